// Kernels of the ternary DDP comm hook (spec/comm.md): chunk scales, the fused encoder, shard sums, decoders.
//
// Chunk c of an n-element bucket is [c * chunk, min((c + 1) * chunk, n)); its trits use the draw
// (seed, stream, step, base | c), element i - c * chunk.  A chunk is non-finite when its scale bits
// are at least 0x7F800000.  NaN results are written as 0x7FC00000, the NaN the host arithmetic of the
// reference produces (a GPU's own NaN results are 0x7FFFFFFF).
#include "common.cuh"

#define VSAOPT_INF_BITS 0x7F800000u
#define VSAOPT_QNAN_BITS 0x7FC00000u
// Elements of a chunk one warp scans for its maximum.
#define VSAOPT_COMM_TILE 4096

// sign(v) where u < |v| / s (float32 division, correctly rounded), else 0; u = f32(w >> 8) * 2^-24.
__device__ __forceinline__ int vsaopt_comm_trit(float v, u32 w, float s) {
    const float u = __fmul_rn(__uint2float_rn(w >> 8), 5.9604644775390625e-08f);
    return (u < __fdiv_rn(fabsf(v), s)) ? vsaopt_sign(v) : 0;
}

// Trit of a 2-bit code: 0, +1, -1, and -1 for code 3 (as the reference reads it).
__device__ __forceinline__ int vsaopt_comm_code_trit(u32 c) { return (c == 1u) - (int)(c >> 1); }

// res[c] = max over chunk c of bits(v_i) & 0x7FFFFFFF, v = x (+ r when has_r); res must start at 0.
// Work unit t (warp-uniform) is tile t % tiles of chunk t / tiles.
extern "C" __global__ void vsaopt_comm_scale_bits(const float* __restrict__ x, const float* __restrict__ r, int has_r, u64 n,
                                                  u64 chunk, u64 tiles, u64 nunits, u64* __restrict__ res) {
    const int lane = vsaopt_lane();
    for (u64 t = vsaopt_warp_id(); t < nunits; t += vsaopt_nwarps()) {
        const u64 c = t / tiles;
        const u64 end = min(n, (c + 1) * chunk);
        const u64 lo = c * chunk + (t % tiles) * VSAOPT_COMM_TILE;
        const u64 hi = min(end, lo + VSAOPT_COMM_TILE);
        u32 mx = 0;
        for (u64 i = lo + lane; i < hi; i += VSAOPT_LANES) {
            const float v = has_r ? __fadd_rn(x[i], r[i]) : x[i];
            mx = max(mx, __float_as_uint(v) & VSAOPT_ABS_MASK);
        }
        mx = vsaopt_warp_max_u32(mx);
        if (lane == 0 && mx) atomicMax(res + c, (u64)mx);
    }
}

// One thread per packed byte j: the codes of elements 4j .. 4j+3 (0 past n).  v = x (+ r when add);
// with keep, r[i] = f32(v - f32(t) * s), +0.0 in non-finite chunks (v - 0 * NaN).  A draw block is
// computed once for the elements of a byte that share it (all four when chunk % 4 == 0).
extern "C" __global__ void vsaopt_comm_encode(const float* __restrict__ x, float* r, int add, int keep,
                                              const int* __restrict__ bits, u64 n, u64 chunk, u8* __restrict__ packed,
                                              u64 nbytes, u32 k0, u32 k1, u32 base, u32 step, u32 stream) {
    for (u64 j = vsaopt_tid(); j < nbytes; j += vsaopt_nthreads()) {
        u32 byte = 0;
        u64 held = ~0ull;  // chunk * 2^32 + block of the draw in w
        vsaopt_u32x4 w = {{0u, 0u, 0u, 0u}};
        for (int q = 0; q < 4; ++q) {
            const u64 i = 4 * j + q;
            if (i >= n) break;
            const u64 c = i / chunk;
            const u64 e = i - c * chunk;
            const float v = add ? __fadd_rn(x[i], r[i]) : x[i];
            const u32 sb = (u32)bits[c];
            int t = 0;
            float res = 0.0f;
            if (sb < VSAOPT_INF_BITS) {
                const float s = __uint_as_float(sb);
                if (s != 0.0f) {
                    const u64 key = (c << 32) | (e / 4);
                    if (key != held) {
                        const vsaopt_draw d = {k0, k1, base | (u32)c, step, stream};
                        w = vsaopt_draw_block(d, e / 4);
                        held = key;
                    }
                    t = vsaopt_comm_trit(v, vsaopt_word(w, (int)(e & 3)), s);
                }
                res = __fsub_rn(v, __fmul_rn((float)t, s));
            }
            byte |= (u32)(t == 1 ? 1 : (t == -1 ? 2 : 0)) << (2 * q);
            if (keep) r[i] = res;
        }
        packed[j] = (u8)byte;
    }
}

// One thread per element i < 4 ceil(n / 4): the all-gather mean acc = f32(t_0) * s_0, acc = acc + f32(t_r) * s_r,
// acc / W (W > 1); rank r's codes start at byte `offset` of row r (`stride` bytes) of `payloads`, its scales at
// row r of `scales` (nchunks each).  *bad = 1 on a code 3 or a nonzero pad code.
extern "C" __global__ void vsaopt_comm_decode_trits(const u8* __restrict__ payloads, u64 stride, u64 offset,
                                                    const float* __restrict__ scales, u64 nchunks, int world, u64 n,
                                                    u64 chunk, float* __restrict__ out, int* __restrict__ bad) {
    const u64 total = 4 * ((n + 3) / 4);
    for (u64 i = vsaopt_tid(); i < total; i += vsaopt_nthreads()) {
        const u64 c = i / chunk;
        const int shift = (int)(2 * (i & 3));
        int flag = 0;
        float acc = 0.0f;
        for (int rk = 0; rk < world; ++rk) {
            const u32 code = ((u32)payloads[rk * stride + offset + i / 4] >> shift) & 3u;
            if (i >= n) {
                flag |= code != 0u;
                continue;
            }
            flag |= code == 3u;
            const float v = __fmul_rn((float)vsaopt_comm_code_trit(code), scales[rk * nchunks + c]);
            acc = rk == 0 ? v : __fadd_rn(acc, v);
        }
        if (flag) *bad = 1;
        if (i < n) {
            if (world > 1) acc = __fdiv_rn(acc, (float)world);
            out[i] = acc != acc ? __uint_as_float(VSAOPT_QNAN_BITS) : acc;
        }
    }
}

// One thread per byte j of a shard: C_k = sum_r t_r[4j + k] exactly; shift > 0: C' = (C >> shift) +
// [w < (C mod 2^shift) << (32 - shift)], w word k of draw block j; two nibble bytes (element 4j + k at
// nibble k).  Shard r of `received` is bytes [r q, (r + 1) q).
extern "C" __global__ void vsaopt_comm_reduce_shard(const u8* __restrict__ received, u64 q, int world, int shift,
                                                    u8* __restrict__ out, u32 k0, u32 k1, u32 tensor, u32 step,
                                                    u32 stream) {
    const vsaopt_draw d = {k0, k1, tensor, step, stream};
    const i64 mask = (((i64)1) << shift) - 1;
    for (u64 j = vsaopt_tid(); j < q; j += vsaopt_nthreads()) {
        i64 sum[4] = {0, 0, 0, 0};
        for (int rk = 0; rk < world; ++rk) {
            const u32 b = received[rk * q + j];
            for (int k = 0; k < 4; ++k) sum[k] += vsaopt_comm_code_trit((b >> (2 * k)) & 3u);
        }
        if (shift) {
            const vsaopt_u32x4 w = vsaopt_draw_block(d, j);
            for (int k = 0; k < 4; ++k) sum[k] = (sum[k] >> shift) + ((i64)w.w[k] < ((sum[k] & mask) << (32 - shift)) ? 1 : 0);
        }
        out[2 * j] = (u8)(((u32)sum[0] & 15u) | (((u32)sum[1] & 15u) << 4));
        out[2 * j + 1] = (u8)(((u32)sum[2] & 15u) | (((u32)sum[3] & 15u) << 4));
    }
}

// One thread per element: out[i] = f32((f64(C'[i]) * (f64(s_c) * pow2)) / f64(W)), C' nibble i of
// `gathered` sign-extended; NaN (0x7FC00000) in non-finite chunks.
extern "C" __global__ void vsaopt_comm_decode_nibbles(const u8* __restrict__ gathered, const int* __restrict__ bits, u64 n,
                                                      u64 chunk, int world, double pow2, float* __restrict__ out) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const u32 sb = (u32)bits[i / chunk];
        if (sb >= VSAOPT_INF_BITS) {
            out[i] = __uint_as_float(VSAOPT_QNAN_BITS);
            continue;
        }
        const int nib = (gathered[i >> 1] >> (4 * (int)(i & 1))) & 15;
        const double unit = __dmul_rn((double)__uint_as_float(sb), pow2);
        out[i] = __double2float_rn(__ddiv_rn(__dmul_rn((double)(nib >= 8 ? nib - 16 : nib), unit), (double)world));
    }
}
