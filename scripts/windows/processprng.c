/* Wine 8's bcryptprimitives.dll lacks ProcessPrng, which Rust's std (>= 1.78) imports to seed
 * its hash maps: without it every Rust program exits with code 53 before main. This stub,
 * copied into the test prefix's system32 by scripts/build-windows, provides it over
 * BCryptGenRandom. Test machinery only: real Windows (10 and later) has ProcessPrng. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
