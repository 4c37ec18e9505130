/* Windows 10 ships bcryptprimitives.dll, whose ProcessPrng Rust's standard
 * library uses for randomness; Debian's wine 8 lacks it. This stand-in
 * draws from RtlGenRandom (advapi32's SystemFunction036), wine's own. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
