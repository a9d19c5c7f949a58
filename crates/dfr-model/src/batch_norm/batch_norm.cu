// BatchNorm kernels for NCHW f32 tensors (`cuda` feature), the CUDA twins of the CPU ops in
// batch_norm.rs: per-channel statistics and backward sums accumulated in double (one block
// per channel, two passes for the variance), the normalisation and the closed-form input
// gradient per element with the batch statistics in double. Compiled with NVRTC.

// Eval mode: y = x * scale[c] + shift[c].
extern "C" __global__ void dfr_channel_affine(const float* __restrict__ x,
                                              const float* __restrict__ scale,
                                              const float* __restrict__ shift,
                                              float* __restrict__ y, long long len, int hw,
                                              int c) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += stride) {
        const int ch = (int)((i / hw) % c);
        y[i] = x[i] * scale[ch] + shift[ch];
    }
}

// Train mode.

#define DFR_BN_BLOCK 256

// Sum of `v` over the block (blockDim.x == DFR_BN_BLOCK); every thread gets the result.
__device__ double dfr_block_sum(double v, double* sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = DFR_BN_BLOCK / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

// Element j (0 <= j < n·hw) of channel ch.
__device__ long long dfr_index(long long j, int ch, int c, int hw) {
    const long long b = j / hw;
    return (b * c + ch) * hw + j % hw;
}

// out[ch] = mean, out[c + ch] = biased variance; grid = (c), block = (DFR_BN_BLOCK).
extern "C" __global__ void dfr_bn_stats(const float* __restrict__ x, float* __restrict__ out,
                                        int n, int c, int hw) {
    __shared__ double sh[DFR_BN_BLOCK];
    const int ch = blockIdx.x;
    const long long count = (long long)n * hw;
    double s = 0.0;
    for (long long j = threadIdx.x; j < count; j += DFR_BN_BLOCK) s += x[dfr_index(j, ch, c, hw)];
    const double mean = dfr_block_sum(s, sh) / (double)count;
    double q = 0.0;
    for (long long j = threadIdx.x; j < count; j += DFR_BN_BLOCK) {
        const double d = (double)x[dfr_index(j, ch, c, hw)] - mean;
        q += d * d;
    }
    const double var = dfr_block_sum(q, sh) / (double)count;
    if (threadIdx.x == 0) {
        out[ch] = (float)mean;
        out[c + ch] = (float)var;
    }
}

// y = x * a + sh with a = invstd·gamma, sh = beta − mean·invstd·gamma (rounded to float).
extern "C" __global__ void dfr_bn_train_fwd(const float* __restrict__ x,
                                            const float* __restrict__ gamma,
                                            const float* __restrict__ beta,
                                            const double* __restrict__ mean,
                                            const double* __restrict__ invstd,
                                            float* __restrict__ y, long long len, int hw, int c) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += stride) {
        const int ch = (int)((i / hw) % c);
        const double k = invstd[ch] * (double)gamma[ch];
        const float a = (float)k;
        const float shift = (float)((double)beta[ch] - mean[ch] * k);
        y[i] = x[i] * a + shift;
    }
}

// out[ch] = Σ dy, out[c + ch] = Σ dy·(x − mean)·invstd; grid = (c), block = (DFR_BN_BLOCK).
extern "C" __global__ void dfr_bn_bwd_sums(const float* __restrict__ x,
                                           const float* __restrict__ dy,
                                           const double* __restrict__ mean,
                                           const double* __restrict__ invstd,
                                           float* __restrict__ out, int n, int c, int hw) {
    __shared__ double sh[DFR_BN_BLOCK];
    const int ch = blockIdx.x;
    const long long count = (long long)n * hw;
    const double m = mean[ch];
    double sdy = 0.0, sdyx = 0.0;
    for (long long j = threadIdx.x; j < count; j += DFR_BN_BLOCK) {
        const long long i = dfr_index(j, ch, c, hw);
        const double g = dy[i];
        sdy += g;
        sdyx += g * ((double)x[i] - m);
    }
    sdy = dfr_block_sum(sdy, sh);
    sdyx = dfr_block_sum(sdyx, sh);
    if (threadIdx.x == 0) {
        out[ch] = (float)sdy;
        out[c + ch] = (float)(sdyx * invstd[ch]);
    }
}

// dx = gamma·invstd·(dy − mean(dy) − (x − mean)·invstd·mean(dy·xhat)), in double.
extern "C" __global__ void dfr_bn_bwd_input(const float* __restrict__ x,
                                            const float* __restrict__ dy,
                                            const double* __restrict__ mean,
                                            const double* __restrict__ invstd,
                                            const float* __restrict__ gamma,
                                            const float* __restrict__ sums,
                                            float* __restrict__ dx, long long len, int hw, int c,
                                            double count) {
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < len; i += stride) {
        const int ch = (int)((i / hw) % c);
        const double is = invstd[ch];
        const double k = (double)gamma[ch] * is;
        const double mdy = (double)sums[ch] / count;
        const double mdyx = (double)sums[c + ch] / count;
        dx[i] = (float)(k * ((double)dy[i] - mdy - ((double)x[i] - mean[ch]) * is * mdyx));
    }
}
