// Gradient-prediction kernels (spec/schedule.md section 6.3).  Every float32 operation is one
// explicitly rounded intrinsic, in the order the spec writes; the least-squares sums are float64
// from +0.0 in history-row order, one thread per element.
#include "common.cuh"

// out = f32(f32(b + f32(v*dt)) + f32(r*w)).
extern "C" __global__ void vsaopt_predict_linear(const float* __restrict__ b, const float* __restrict__ v,
                                                 const float* __restrict__ r, float* __restrict__ out, u64 n, float dt,
                                                 float w) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const float q = __fadd_rn(b[i], __fmul_rn(v[i], dt));
        out[i] = __fadd_rn(q, __fmul_rn(r[i], w));
    }
}

// out = f32(curr + f32(m * f32(curr - prev))).
extern "C" __global__ void vsaopt_momentum_extrapolate(const float* __restrict__ prev, const float* __restrict__ curr,
                                                       float* __restrict__ out, u64 n, float m) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const float c = curr[i];
        out[i] = __fadd_rn(c, __fmul_rn(__fsub_rn(c, prev[i]), m));
    }
}

// out = f32(x + f32(a*y)).
extern "C" __global__ void vsaopt_axpy(const float* __restrict__ x, const float* __restrict__ y, float* __restrict__ out,
                                       u64 n, float a) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) out[i] = __fadd_rn(x[i], __fmul_rn(y[i], a));
}

// e = f32(g - f32(b + f32(v*dt))); r' = f32(f32(D*r) + f32(O*e)).
extern "C" __global__ void vsaopt_residual_update(const float* __restrict__ r, const float* __restrict__ g,
                                                  const float* __restrict__ b, const float* __restrict__ v,
                                                  float* __restrict__ out, float* __restrict__ err, u64 n, float dt,
                                                  float decay, float one_minus_decay) {
    for (u64 i = vsaopt_tid(); i < n; i += vsaopt_nthreads()) {
        const float q = __fadd_rn(b[i], __fmul_rn(v[i], dt));
        const float e = __fsub_rn(g[i], q);
        err[i] = e;
        out[i] = __fadd_rn(__fmul_rn(r[i], decay), __fmul_rn(e, one_minus_decay));
    }
}

// Per element j, from +0.0 in row order i: S0 = S0 + w_i*f64(h[rows_i, j]), S1 = S1 + wt_i*f64(h[rows_i, j]);
// baseline = f32((Swt2*S0 - Swt*S1) * inv), velocity = f32((Sw*S1 - Swt*S0) * inv), every f64 op rounded.
extern "C" __global__ void vsaopt_wls_fit(const float* __restrict__ hist, const i64* __restrict__ rows,
                                          const double* __restrict__ w, const double* __restrict__ wt, u64 k, u64 n,
                                          double sum_w, double sum_wt, double sum_wt2, double inv,
                                          float* __restrict__ base, float* __restrict__ vel) {
    for (u64 j = vsaopt_tid(); j < n; j += vsaopt_nthreads()) {
        double s0 = 0.0, s1 = 0.0;
        for (u64 i = 0; i < k; ++i) {
            const double g = (double)hist[(u64)rows[i] * n + j];
            s0 = __dadd_rn(s0, __dmul_rn(w[i], g));
            s1 = __dadd_rn(s1, __dmul_rn(wt[i], g));
        }
        base[j] = __double2float_rn(__dmul_rn(__dsub_rn(__dmul_rn(sum_wt2, s0), __dmul_rn(sum_wt, s1)), inv));
        vel[j] = __double2float_rn(__dmul_rn(__dsub_rn(__dmul_rn(sum_w, s1), __dmul_rn(sum_wt, s0)), inv));
    }
}
