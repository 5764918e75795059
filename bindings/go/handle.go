package oauthlock

import "sync/atomic"

// handle guards a library handle that Close frees: calls take a reference for as long as
// the library may use the pointer (a call given up on by its ctx keeps its reference until
// the library returns), and the handle is freed when Close has been called and the last
// reference is released. The C ABI forbids freeing a handle in use; this makes it
// impossible from Go.
type handle struct {
	// bit 0: closed; the rest: references (the owner's, until Close, and each call's).
	state atomic.Int64
	free  func()
}

func newHandle(free func()) *handle {
	h := &handle{free: free}
	h.state.Store(2)
	return h
}

// acquire takes a reference; false once Close was called.
func (h *handle) acquire() bool {
	for {
		s := h.state.Load()
		if s&1 != 0 {
			return false
		}
		if h.state.CompareAndSwap(s, s+2) {
			return true
		}
	}
}

// release drops a reference; the last one after Close frees the handle.
func (h *handle) release() {
	if h.state.Add(-2) == 1 {
		h.free()
	}
}

// close drops the owner's reference once; later calls do nothing.
func (h *handle) close() {
	for {
		s := h.state.Load()
		if s&1 != 0 {
			return
		}
		if h.state.CompareAndSwap(s, s|1) {
			h.release()
			return
		}
	}
}
