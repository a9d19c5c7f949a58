// Depthwise 2-D convolution for dfr-model's `cuda` feature: forward, input gradient and
// weight gradient, float32, NCHW contiguous, any kernel size and stride, zero padding
// (top, left given; bottom and right implied by the output size). Compiled at run time with
// NVRTC (no headers needed); `.ci/check-cuda` also compiles it with nvcc.

// One thread per output element (grid-stride loop).
extern "C" __global__ void dfr_dw_forward(
    const float* __restrict__ x, const float* __restrict__ k, float* __restrict__ out,
    int n, int c, int h, int w, int kh, int kw, int ho, int wo, int stride, int top, int left)
{
    const long long total = (long long)n * c * ho * wo;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const int ox = (int)(i % wo);
        const long long t = i / wo;
        const int oy = (int)(t % ho);
        const long long plane = t / ho;
        const int ch = (int)(plane % c);
        const float* xp = x + plane * h * w;
        const float* kp = k + (long long)ch * kh * kw;
        float acc = 0.0f;
        for (int ky = 0; ky < kh; ++ky) {
            const int iy = oy * stride + ky - top;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const int ix = ox * stride + kx - left;
                if (ix < 0 || ix >= w) continue;
                acc += xp[iy * w + ix] * kp[ky * kw + kx];
            }
        }
        out[i] = acc;
    }
}

// One thread per input element: the sum over every output window that reads it.
extern "C" __global__ void dfr_dw_backward_input(
    const float* __restrict__ gout, const float* __restrict__ k, float* __restrict__ gin,
    int n, int c, int h, int w, int kh, int kw, int ho, int wo, int stride, int top, int left)
{
    const long long total = (long long)n * c * h * w;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        const int ix = (int)(i % w);
        const long long t = i / w;
        const int iy = (int)(t % h);
        const long long plane = t / h;
        const int ch = (int)(plane % c);
        const float* gp = gout + plane * ho * wo;
        const float* kp = k + (long long)ch * kh * kw;
        float acc = 0.0f;
        for (int ky = 0; ky < kh; ++ky) {
            const int ty = iy + top - ky;
            if (ty < 0 || ty % stride != 0) continue;
            const int oy = ty / stride;
            if (oy >= ho) continue;
            for (int kx = 0; kx < kw; ++kx) {
                const int tx = ix + left - kx;
                if (tx < 0 || tx % stride != 0) continue;
                const int ox = tx / stride;
                if (ox >= wo) continue;
                acc += gp[oy * wo + ox] * kp[ky * kw + kx];
            }
        }
        gin[i] = acc;
    }
}

#define DFR_DW_BLOCK 256

// One block per weight element (channel, ky, kx): a block-wide reduction over batch and
// output positions. Launch with DFR_DW_BLOCK threads.
extern "C" __global__ void dfr_dw_backward_weight(
    const float* __restrict__ x, const float* __restrict__ gout, float* __restrict__ gw,
    int n, int c, int h, int w, int kh, int kw, int ho, int wo, int stride, int top, int left)
{
    __shared__ float partial[DFR_DW_BLOCK];
    const int kk = kh * kw;
    const int ch = blockIdx.x / kk;
    const int r = blockIdx.x % kk;
    const int ky = r / kw;
    const int kx = r % kw;
    const long long per = (long long)n * ho * wo;
    float acc = 0.0f;
    for (long long j = threadIdx.x; j < per; j += blockDim.x) {
        const int ox = (int)(j % wo);
        const long long t = j / wo;
        const int oy = (int)(t % ho);
        const long long b = t / ho;
        const int iy = oy * stride + ky - top;
        const int ix = ox * stride + kx - left;
        if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
        const long long plane = b * c + ch;
        acc += x[plane * h * w + iy * w + ix] * gout[plane * ho * wo + oy * wo + ox];
    }
    partial[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) gw[blockIdx.x] = partial[0];
}
