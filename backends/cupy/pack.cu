// Trit packing (spec/SPEC.md section 6): 2-bit (4 trits a byte) and base-3 (5 trits a byte).
//
// One thread per packed byte, grid-stride.  A malformed input (a value outside {-1, 0, 1}, a
// 2-bit code 3, a base-3 byte above 242, a nonzero pad position) sets *bad = 1; the flag
// never changes the bytes written, which follow the numpy reference.
#include "common.cuh"

// t mod 3 in [0, 3) (mathematical remainder): 0 -> 0, +1 -> 1, -1 -> 2.
__device__ __forceinline__ int vsaopt_code(int t) { return ((t % 3) + 3) % 3; }
// Trit of a code, with code 3 read as 2 (as the reference's lookup does): 0, +1, -1, -1.
__device__ __forceinline__ signed char vsaopt_decode(int c) { return (signed char)(c == 0 ? 0 : (c == 1 ? 1 : -1)); }

extern "C" __global__ void vsaopt_pack_2bit(const signed char* __restrict__ t, u8* __restrict__ out, u64 n,
                                            u64 nbytes, int* __restrict__ bad) {
    const bool vec = vsaopt_aligned(t, 4);
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        int v = 0, flag = 0;
        if (vec && 4 * j + 4 <= n) {  // one 32-bit load of the byte's four trits
            const char4 c = vsaopt_load_char4(t + 4 * j);
            const int x[4] = {c.x, c.y, c.z, c.w};
            for (int k = 0; k < 4; ++k) {
                flag |= (x[k] < -1) | (x[k] > 1);
                v |= vsaopt_code(x[k]) << (2 * k);
            }
        } else {
            for (int k = 0; k < 4; ++k) {
                const u64 i = 4 * j + k;
                if (i < n) {
                    const int x = t[i];
                    flag |= (x < -1) | (x > 1);
                    v |= vsaopt_code(x) << (2 * k);
                }
            }
        }
        out[j] = (u8)v;
        if (flag) *bad = 1;
    }
}

extern "C" __global__ void vsaopt_unpack_2bit(const u8* __restrict__ p, signed char* __restrict__ out, u64 n,
                                              u64 nbytes, int* __restrict__ bad) {
    const bool vec = vsaopt_aligned(out, 4);
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        const int v = p[j];
        if (vec && 4 * j + 4 <= n) {  // four trits, one 32-bit store
            const int c0 = v & 3, c1 = (v >> 2) & 3, c2 = (v >> 4) & 3, c3 = (v >> 6) & 3;
            vsaopt_store_char4(out + 4 * j, vsaopt_decode(c0), vsaopt_decode(c1), vsaopt_decode(c2), vsaopt_decode(c3));
            if ((c0 == 3) | (c1 == 3) | (c2 == 3) | (c3 == 3)) *bad = 1;
            continue;
        }
        int flag = 0;
        for (int k = 0; k < 4; ++k) {
            const u64 i = 4 * j + k;
            const int c = (v >> (2 * k)) & 3;
            if (i < n) {
                flag |= (c == 3);
                out[i] = vsaopt_decode(c);
            } else {
                flag |= (c != 0);
            }
        }
        if (flag) *bad = 1;
    }
}

extern "C" __global__ void vsaopt_pack_base3(const signed char* __restrict__ t, u8* __restrict__ out, u64 n,
                                             u64 nbytes, int* __restrict__ bad) {
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        int v = 0, flag = 0, pow3 = 1;
        for (int k = 0; k < 5; ++k) {
            const u64 i = 5 * j + k;
            if (i < n) {
                const int x = t[i];
                flag |= (x < -1) | (x > 1);
                v += vsaopt_code(x) * pow3;
            }
            pow3 *= 3;
        }
        out[j] = (u8)v;
        if (flag) *bad = 1;
    }
}

extern "C" __global__ void vsaopt_unpack_base3(const u8* __restrict__ p, signed char* __restrict__ out, u64 n,
                                               u64 nbytes, int* __restrict__ bad) {
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        const int v = p[j];
        int flag = v > 242, pow3 = 1;
        for (int k = 0; k < 5; ++k) {
            const u64 i = 5 * j + k;
            const int c = (v / pow3) % 3;
            if (i < n) {
                out[i] = vsaopt_decode(c);
            } else {
                flag |= (c != 0);
            }
            pow3 *= 3;
        }
        if (flag) *bad = 1;
    }
}
