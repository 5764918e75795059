package oauthlock

// #include "helpers.h"
// #include <stdlib.h>
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// The library's callbacks, reached through the trampolines of helpers.c. Only cgo.Handle
// numbers cross into C as userdata, never Go pointers.

//export oauthlockGoRefresh
func oauthlockGoRefresh(userdata C.uintptr_t, credentialJSON *C.char, answer *C.oauth_lock_answer) C.int {
	g, ok := cgo.Handle(userdata).Value().(*goRefresher)
	if !ok {
		return C.int(CodeTransient)
	}
	js, code, oauthError, description := g.refresh(C.GoString(credentialJSON))
	if code == 0 {
		c := C.CString(string(js))
		defer C.free(unsafe.Pointer(c))
		// JSON the library refuses fails the refresh as Transient, naming why.
		C.oauth_lock_answer_set_json(answer, c)
		return 0
	}
	var oe, d *C.char
	if oauthError != "" {
		oe = C.CString(oauthError)
		defer C.free(unsafe.Pointer(oe))
	}
	if description != "" {
		d = C.CString(description)
		defer C.free(unsafe.Pointer(d))
	}
	C.oauth_lock_answer_set_error(answer, oe, d)
	return C.int(code)
}

//export oauthlockGoFree
func oauthlockGoFree(userdata C.uintptr_t) {
	cgo.Handle(userdata).Delete()
}

//export oauthlockGoEvent
func oauthlockGoEvent(eventJSON *C.char) {
	logEvent(C.GoString(eventJSON))
}
