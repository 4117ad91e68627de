"""CUDA C source of the GPU kernels (compiled once by CuPy's NVRTC at backend load).

Every kernel is a grid-stride loop without shared memory or barriers, so a launch with one block of one
thread does the whole job serially: the tests compile this very source as C++ with a small shim
(:mod:`livepuppet.kernels.cpu_emulation`) and check it against the CPU twins on machines without a GPU.
Arithmetic mirrors the twins: OpenCV's remap fixed point (1/32-pixel positions, 15-bit weights), the
integer BT.601 colour formulas, and torch's ``grid_sample`` trilinear weights (fp32 accumulation).
"""

from __future__ import annotations

INTER_BITS = 5  # OpenCV: map positions in 1/32 pixel (cv2.convertMaps to CV_16SC2)

CUDA_SOURCE = r"""
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define LP_DEV __device__ __forceinline__
__device__ __forceinline__ float lp_h2f(unsigned short h) {
    float f; asm("{cvt.f32.f16 %0, %1;}" : "=f"(f) : "h"(h)); return f;
}
__device__ __forceinline__ unsigned short lp_f2h(float f) {
    unsigned short h; asm("{cvt.rn.f16.f32 %0, %1;}" : "=h"(h) : "f"(f)); return h;
}
#else  /* compiled as C++ by the CPU emulation, whose prelude supplies lp_h2f, lp_f2h and the intrinsics */
#define LP_DEV static inline
#endif

#define LP_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
         i += (long long)blockDim.x * gridDim.x)

LP_DEV int lp_clampi(int v, int lo, int hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* ------------------------------------------------------------------ mesh: per-triangle affines */
/* (B, T, 6) f32 [a b c d e f]: source = (a x + b y + c, d x + e y + f) for a target point (x, y);
   the twin of kernels.mesh_warp.triangle_affines (float64 solve, degenerate -> mean translation). */
extern "C" __global__ void lp_triangle_affines(const float* src, const float* dst, const int* tris,
                                               int B, int P, int T, float* aff) {
    LP_GRID_STRIDE(i, (long long)B * T) {
        int b = (int)(i / T), t = (int)(i % T);
        const float* s = src + (long long)b * P * 2;
        const float* d = dst + (long long)b * P * 2;
        int v0 = tris[3 * t], v1 = tris[3 * t + 1], v2 = tris[3 * t + 2];
        double x0 = d[2 * v0], y0 = d[2 * v0 + 1], x1 = d[2 * v1], y1 = d[2 * v1 + 1];
        double x2 = d[2 * v2], y2 = d[2 * v2 + 1];
        double sx0 = s[2 * v0], sy0 = s[2 * v0 + 1], sx1 = s[2 * v1], sy1 = s[2 * v1 + 1];
        double sx2 = s[2 * v2], sy2 = s[2 * v2 + 1];
        /* cofactors of m = [[x0 y0 1] [x1 y1 1] [x2 y2 1]]; coef = adj(m) s / det(m) */
        double c00 = y1 - y2, c01 = x2 - x1, c02 = x1 * y2 - x2 * y1;
        double c10 = y2 - y0, c11 = x0 - x2, c12 = x2 * y0 - x0 * y2;
        double c20 = y0 - y1, c21 = x1 - x0, c22 = x0 * y1 - x1 * y0;
        double det = x0 * c00 + y0 * c01 + c02;
        float* o = aff + i * 6;
        if (fabs(det) > 1e-9) {
            o[0] = (float)((c00 * sx0 + c10 * sx1 + c20 * sx2) / det);
            o[1] = (float)((c01 * sx0 + c11 * sx1 + c21 * sx2) / det);
            o[2] = (float)((c02 * sx0 + c12 * sx1 + c22 * sx2) / det);
            o[3] = (float)((c00 * sy0 + c10 * sy1 + c20 * sy2) / det);
            o[4] = (float)((c01 * sy0 + c11 * sy1 + c21 * sy2) / det);
            o[5] = (float)((c02 * sy0 + c12 * sy1 + c22 * sy2) / det);
        } else {
            o[0] = 1.f; o[1] = 0.f; o[2] = (float)(((sx0 - x0) + (sx1 - x1) + (sx2 - x2)) / 3.0);
            o[3] = 0.f; o[4] = 1.f; o[5] = (float)(((sy0 - y0) + (sy1 - y1) + (sy2 - y2)) / 3.0);
        }
    }
}

/* ------------------------------------------------------------- mesh: painter's-order rasterization */
/* Edge function of p against the edge (a, b), evaluated from the endpoint with the smaller vertex index
   so that the two triangles sharing an edge get exactly opposite values: no pixel falls between them. */
LP_DEV double lp_edge(int ia, double ax, double ay, int ib, double bx, double by, double px, double py) {
    if (ia < ib) return (bx - ax) * (py - ay) - (by - ay) * (px - ax);
    return -((ax - bx) * (py - by) - (ay - by) * (px - bx));
}

/* One block per (item, triangle); its threads walk the triangle's bounding box and keep, per pixel,
   the highest draw rank that covers it (atomicMax): the painter's order without sorting on the GPU.
   Pixel (i, j) stands for the target point (j / sx, i / sy); edges are inclusive. ranks (B, T) int:
   position in the draw order, -1 = not drawn. rank_buf (B, h, w) int must be -1 before the launch. */
extern "C" __global__ void lp_raster_ranks(const float* dst, const int* tris, const int* ranks,
                                           int B, int P, int T, float sx, float sy, int h, int w,
                                           int* rank_buf) {
    for (long long i = blockIdx.x; i < (long long)B * T; i += gridDim.x) {
        int b = (int)(i / T), t = (int)(i % T);
        int r = ranks[i];
        if (r < 0) continue;
        const float* d = dst + (long long)b * P * 2;
        int v0 = tris[3 * t], v1 = tris[3 * t + 1], v2 = tris[3 * t + 2];
        double x0 = (double)d[2 * v0] * sx, y0 = (double)d[2 * v0 + 1] * sy;
        double x1 = (double)d[2 * v1] * sx, y1 = (double)d[2 * v1 + 1] * sy;
        double x2 = (double)d[2 * v2] * sx, y2 = (double)d[2 * v2 + 1] * sy;
        double area = (x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0);
        if (area == 0.0) continue;
        double sgn = area > 0.0 ? 1.0 : -1.0;
        double lx = fmin(x0, fmin(x1, x2)), hx = fmax(x0, fmax(x1, x2));
        double ly = fmin(y0, fmin(y1, y2)), hy = fmax(y0, fmax(y1, y2));
        if (hx < 0.0 || hy < 0.0 || lx > w - 1 || ly > h - 1) continue;
        int bx0 = (int)ceil(fmax(lx, 0.0)), bx1 = (int)floor(fmin(hx, (double)(w - 1)));
        int by0 = (int)ceil(fmax(ly, 0.0)), by1 = (int)floor(fmin(hy, (double)(h - 1)));
        int bw = bx1 - bx0 + 1, bh = by1 - by0 + 1;
        if (bw <= 0 || bh <= 0) continue;
        int* out = rank_buf + (long long)b * h * w;
        for (int p = threadIdx.x; p < bw * bh; p += blockDim.x) {
            int px = bx0 + p % bw, py = by0 + p / bw;
            double e0 = lp_edge(v1, x1, y1, v2, x2, y2, px, py) * sgn;
            double e1 = lp_edge(v2, x2, y2, v0, x0, y0, px, py) * sgn;
            double e2 = lp_edge(v0, x0, y0, v1, x1, y1, px, py) * sgn;
            if (e0 >= 0.0 && e1 >= 0.0 && e2 >= 0.0) atomicMax(out + (long long)py * w + px, r);
        }
    }
}

/* The affine of the winning triangle at target point (px, py), or identity where none was drawn;
   float products and sums in the order the CPU twin uses (no fused multiply-add). */
LP_DEV void lp_map_at(const int* rank_buf, const int* order, const float* aff, int b, int T, long long pix,
                      float px, float py, float* mx, float* my) {
    int r = rank_buf[pix];
    if (r < 0) { *mx = px; *my = py; return; }
    int t = order[(long long)b * T + r];
    const float* a = aff + ((long long)b * T + t) * 6;
    *mx = __fadd_rn(__fadd_rn(__fmul_rn(a[0], px), __fmul_rn(a[1], py)), a[2]);
    *my = __fadd_rn(__fadd_rn(__fmul_rn(a[3], px), __fmul_rn(a[4], py)), a[5]);
}

/* (B, h, w) f32 backward map from the rank buffer; pixel (i, j) is the target point (j kx, i ky). */
extern "C" __global__ void lp_map_from_ranks(const int* rank_buf, const int* order, const float* aff,
                                             int B, int T, int h, int w, float kx, float ky,
                                             float* map_x, float* map_y) {
    LP_GRID_STRIDE(i, (long long)B * h * w) {
        int b = (int)(i / ((long long)h * w));
        int rem = (int)(i % ((long long)h * w));
        float px = __fmul_rn((float)(rem % w), kx), py = __fmul_rn((float)(rem / w), ky);
        lp_map_at(rank_buf, order, aff, b, T, i, px, py, map_x + i, map_y + i);
    }
}

/* ----------------------------------------------------------------------------- bilinear remap */
/* OpenCV's remap with CV_16SC2 maps: position rounded to 1/32 pixel (round half to even), replicated
   border, u8 with 15-bit integer weights and rounding, f32 with the float weight table. */
LP_DEV void lp_sample_u8(const unsigned char* img, int H, int W, int C, float mx, float my,
                         unsigned char* out) {
    int ix = __float2int_rn(mx * 32.f), iy = __float2int_rn(my * 32.f);
    int x0 = ix >> 5, y0 = iy >> 5, fx = ix & 31, fy = iy & 31;
    int xa = lp_clampi(x0, 0, W - 1), xb = lp_clampi(x0 > W ? W : x0 + 1, 0, W - 1);
    int ya = lp_clampi(y0, 0, H - 1), yb = lp_clampi(y0 > H ? H : y0 + 1, 0, H - 1);
    int w00 = (32 - fx) * (32 - fy) * 32, w01 = fx * (32 - fy) * 32;
    int w10 = (32 - fx) * fy * 32, w11 = fx * fy * 32;
    const unsigned char* ra = img + (long long)ya * W * C;
    const unsigned char* rb = img + (long long)yb * W * C;
    for (int c = 0; c < C; ++c) {
        int v = ra[xa * C + c] * w00 + ra[xb * C + c] * w01 + rb[xa * C + c] * w10 + rb[xb * C + c] * w11;
        out[c] = (unsigned char)lp_clampi((v + (1 << 14)) >> 15, 0, 255);
    }
}

LP_DEV void lp_sample_f32(const float* img, int H, int W, int C, float mx, float my, float* out) {
    int ix = __float2int_rn(mx * 32.f), iy = __float2int_rn(my * 32.f);
    int x0 = ix >> 5, y0 = iy >> 5, fx = ix & 31, fy = iy & 31;
    int xa = lp_clampi(x0, 0, W - 1), xb = lp_clampi(x0 > W ? W : x0 + 1, 0, W - 1);
    int ya = lp_clampi(y0, 0, H - 1), yb = lp_clampi(y0 > H ? H : y0 + 1, 0, H - 1);
    float ax = fx * (1.f / 32.f), ay = fy * (1.f / 32.f);
    float w00 = (1.f - ax) * (1.f - ay), w01 = ax * (1.f - ay), w10 = (1.f - ax) * ay, w11 = ax * ay;
    const float* ra = img + (long long)ya * W * C;
    const float* rb = img + (long long)yb * W * C;
    for (int c = 0; c < C; ++c) {
        float v = __fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(ra[xa * C + c], w00), __fmul_rn(ra[xb * C + c], w01)),
                                      __fmul_rn(rb[xa * C + c], w10)), __fmul_rn(rb[xb * C + c], w11));
        out[c] = v;
    }
}

/* images (B or 1, H, W, C); maps (B or 1, h, w) (a batch stride of 0 shares one); out (B, h, w, C). */
extern "C" __global__ void lp_remap_u8(const unsigned char* img, int H, int W, int C, long long img_stride,
                                       const float* map_x, const float* map_y, long long map_stride,
                                       int B, int h, int w, unsigned char* out) {
    LP_GRID_STRIDE(i, (long long)B * h * w) {
        long long b = i / ((long long)h * w), rem = i % ((long long)h * w);
        lp_sample_u8(img + b * img_stride, H, W, C, map_x[b * map_stride + rem], map_y[b * map_stride + rem],
                     out + i * C);
    }
}

extern "C" __global__ void lp_remap_f32(const float* img, int H, int W, int C, long long img_stride,
                                        const float* map_x, const float* map_y, long long map_stride,
                                        int B, int h, int w, float* out) {
    LP_GRID_STRIDE(i, (long long)B * h * w) {
        long long b = i / ((long long)h * w), rem = i % ((long long)h * w);
        lp_sample_f32(img + b * img_stride, H, W, C, map_x[b * map_stride + rem], map_y[b * map_stride + rem],
                      out + i * C);
    }
}

/* Fused mesh render: map from the rank buffer (full resolution) and bilinear sample, no map in memory. */
extern "C" __global__ void lp_mesh_remap_u8(const unsigned char* img, int H, int W, int C, long long img_stride,
                                            const int* rank_buf, const int* order, const float* aff,
                                            int B, int T, int h, int w, unsigned char* out) {
    LP_GRID_STRIDE(i, (long long)B * h * w) {
        int b = (int)(i / ((long long)h * w));
        int rem = (int)(i % ((long long)h * w));
        float mx, my;
        lp_map_at(rank_buf, order, aff, b, T, i, (float)(rem % w), (float)(rem / w), &mx, &my);
        lp_sample_u8(img + b * img_stride, H, W, C, mx, my, out + i * C);
    }
}

/* -------------------------------------------------------------------------------------- blend */
/* Colour-matched foreground (3x4 affine on RGB, rounded and clamped to u8), then OpenCV's blendLinear:
   (fg m + bg (1 - m)) / (m + (1 - m) + 1e-5), rounded half to even. Pixels (N, 3) u8, mask (N,) f32. */
extern "C" __global__ void lp_feather_blend_u8(const unsigned char* bg, const unsigned char* fg,
                                               const float* mask, const float* affine, int use_affine,
                                               long long n, unsigned char* out) {
    LP_GRID_STRIDE(i, n) {
        float m = mask[i], inv = 1.f - m;
        float denom = __fadd_rn(__fadd_rn(m, inv), 1e-5f);
        float f[3];
        for (int c = 0; c < 3; ++c) f[c] = (float)fg[i * 3 + c];
        if (use_affine) {
            float g[3];
            for (int c = 0; c < 3; ++c) {
                const float* a = affine + 4 * c;
                float v = __fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(a[0], f[0]), __fmul_rn(a[1], f[1])),
                                              __fmul_rn(a[2], f[2])), a[3]);
                g[c] = (float)lp_clampi(__float2int_rn(fminf(fmaxf(v, 0.f), 255.f)), 0, 255);
            }
            for (int c = 0; c < 3; ++c) f[c] = g[c];
        }
        for (int c = 0; c < 3; ++c) {
            float v = __fdiv_rn(__fadd_rn(__fmul_rn(f[c], m), __fmul_rn((float)bg[i * 3 + c], inv)), denom);
            out[i * 3 + c] = (unsigned char)lp_clampi(__float2int_rn(v), 0, 255);
        }
    }
}

/* ------------------------------------------------------------------------------ colour conversion */
/* BT.601 integer formulas (8-bit coefficients, as libyuv/swscale-style fixed point); full = 1 for
   full-range (JPEG) YCbCr. Chroma is the rounded mean of each 2x2 block's RGB. u/v: chroma planes with
   element step cstep (1: I420 planes, 2: NV12 interleaved) and row step crow. */
LP_DEV void lp_rgb_to_yuv(int r, int g, int b, int full, int* y, int* u, int* v) {
    if (full) {
        *y = (77 * r + 150 * g + 29 * b + 128) >> 8;
        *u = ((-43 * r - 85 * g + 128 * b + 128) >> 8) + 128;
        *v = ((128 * r - 107 * g - 21 * b + 128) >> 8) + 128;
    } else {
        *y = ((66 * r + 129 * g + 25 * b + 128) >> 8) + 16;
        *u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
        *v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    }
}

extern "C" __global__ void lp_rgb_to_yuv420(const unsigned char* rgb, int H, int W, int full,
                                            unsigned char* yp, unsigned char* up, unsigned char* vp,
                                            int cstep, int crow) {
    int hw = W / 2;
    LP_GRID_STRIDE(i, (long long)(H / 2) * hw) {
        int cy = (int)(i / hw), cx = (int)(i % hw);
        int sr = 0, sg = 0, sb = 0, yy, uu, vv;
        for (int k = 0; k < 4; ++k) {
            int py = 2 * cy + k / 2, px = 2 * cx + k % 2;
            const unsigned char* p = rgb + ((long long)py * W + px) * 3;
            sr += p[0]; sg += p[1]; sb += p[2];
            lp_rgb_to_yuv(p[0], p[1], p[2], full, &yy, &uu, &vv);
            yp[(long long)py * W + px] = (unsigned char)lp_clampi(yy, 0, 255);
        }
        lp_rgb_to_yuv((sr + 2) >> 2, (sg + 2) >> 2, (sb + 2) >> 2, full, &yy, &uu, &vv);
        long long o = (long long)cy * crow + (long long)cx * cstep;
        up[o] = (unsigned char)lp_clampi(uu, 0, 255);
        vp[o] = (unsigned char)lp_clampi(vv, 0, 255);
    }
}

extern "C" __global__ void lp_yuv420_to_rgb(const unsigned char* yp, const unsigned char* up,
                                            const unsigned char* vp, int cstep, int crow, int H, int W, int full,
                                            unsigned char* rgb) {
    LP_GRID_STRIDE(i, (long long)H * W) {
        int py = (int)(i / W), px = (int)(i % W);
        long long o = (long long)(py / 2) * crow + (long long)(px / 2) * cstep;
        int yv = yp[i], d = up[o] - 128, e = vp[o] - 128, r, g, b;
        if (full) {
            int c = 256 * yv;
            r = (c + 359 * e + 128) >> 8;
            g = (c - 88 * d - 183 * e + 128) >> 8;
            b = (c + 454 * d + 128) >> 8;
        } else {
            int c = 298 * (yv - 16);
            r = (c + 409 * e + 128) >> 8;
            g = (c - 100 * d - 208 * e + 128) >> 8;
            b = (c + 516 * d + 128) >> 8;
        }
        rgb[i * 3] = (unsigned char)lp_clampi(r, 0, 255);
        rgb[i * 3 + 1] = (unsigned char)lp_clampi(g, 0, 255);
        rgb[i * 3 + 2] = (unsigned char)lp_clampi(b, 0, 255);
    }
}

/* ------------------------------------------------------------------- 5-D trilinear grid sampling */
/* torch.nn.functional.grid_sample(input, grid, mode="bilinear", padding_mode="zeros",
   align_corners=False) for 5-D input: x indexes W, y H, z D; corners outside the volume add nothing.
   One thread per output position, looping over channels; fp32 accumulation (IS_HALF: fp16 in/out). */
#define LP_GRID_SAMPLE_3D(NAME, T_IN, LOAD, STORE)                                                        \
extern "C" __global__ void NAME(const T_IN* inp, const T_IN* grid, int N, int C, int D, int H, int W,     \
                                int Do, int Ho, int Wo, T_IN* out) {                                     \
    long long so = (long long)Do * Ho * Wo, si = (long long)D * H * W;                                    \
    LP_GRID_STRIDE(i, (long long)N * so) {                                                                \
        long long n = i / so, s = i % so;                                                                 \
        float gx = LOAD(grid[i * 3]), gy = LOAD(grid[i * 3 + 1]), gz = LOAD(grid[i * 3 + 2]);              \
        float ix = ((gx + 1.f) * W - 1.f) / 2.f, iy = ((gy + 1.f) * H - 1.f) / 2.f;                       \
        float iz = ((gz + 1.f) * D - 1.f) / 2.f;                                                         \
        const T_IN* src = inp + n * C * si;                                                               \
        T_IN* dst = out + n * C * so + s;                                                                 \
        bool any = ix > -1.f && ix < (float)W && iy > -1.f && iy < (float)H && iz > -1.f && iz < (float)D; \
        if (!any) { for (int c = 0; c < C; ++c) dst[c * so] = STORE(0.f); continue; }                    \
        float fx0 = floorf(ix), fy0 = floorf(iy), fz0 = floorf(iz);                                       \
        int x0 = (int)fx0, y0 = (int)fy0, z0 = (int)fz0;                                                  \
        float wx1 = ix - fx0, wx0 = (fx0 + 1.f) - ix, wy1 = iy - fy0, wy0 = (fy0 + 1.f) - iy;             \
        float wz1 = iz - fz0, wz0 = (fz0 + 1.f) - iz;                                                     \
        float wgt[8]; long long off[8]; bool inb[8];                                                      \
        for (int k = 0; k < 8; ++k) {                                                                     \
            int dx = k & 1, dy = (k >> 1) & 1, dz = k >> 2;                                               \
            int xx = x0 + dx, yy = y0 + dy, zz = z0 + dz;                                                 \
            inb[k] = xx >= 0 && xx < W && yy >= 0 && yy < H && zz >= 0 && zz < D;                         \
            wgt[k] = (dx ? wx1 : wx0) * (dy ? wy1 : wy0) * (dz ? wz1 : wz0);                              \
            off[k] = inb[k] ? ((long long)zz * H + yy) * W + xx : 0;                                      \
        }                                                                                                 \
        for (int c = 0; c < C; ++c) {                                                                     \
            const T_IN* sc = src + c * si;                                                                \
            float acc = 0.f;                                                                              \
            for (int k = 0; k < 8; ++k) if (inb[k]) acc += wgt[k] * LOAD(sc[off[k]]);                     \
            dst[c * so] = STORE(acc);                                                                     \
        }                                                                                                 \
    }                                                                                                     \
}

#define LP_ID(v) (v)
#define LP_H2F(v) lp_h2f(v)
#define LP_F2H(v) lp_f2h(v)
LP_GRID_SAMPLE_3D(lp_grid_sample_3d_f32, float, LP_ID, LP_ID)
LP_GRID_SAMPLE_3D(lp_grid_sample_3d_f16, unsigned short, LP_H2F, LP_F2H)
"""

KERNEL_NAMES = (
    "lp_triangle_affines",
    "lp_raster_ranks",
    "lp_map_from_ranks",
    "lp_remap_u8",
    "lp_remap_f32",
    "lp_mesh_remap_u8",
    "lp_feather_blend_u8",
    "lp_rgb_to_yuv420",
    "lp_yuv420_to_rgb",
    "lp_grid_sample_3d_f32",
    "lp_grid_sample_3d_f16",
)
