// A plain C view of the parts of libtorch (ATen and autograd) that swift-npid uses.
//
// Conventions:
// - Every function returns 0 on success and 1 on failure; on failure the message is
//   in ct_last_error() (thread-local, valid until the next failing call on this thread).
//   No C++ exception crosses this boundary.
// - Results come back through out-parameters. A new tensor handle written to `out`
//   is owned by the caller and freed with ct_free.
// - Optional tensor arguments may be NULL.
// - Function names follow the ATen operator they wrap.
#ifndef CTORCH_H
#define CTORCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_tensor ct_tensor;

// Scalar types, matching Swift's DType.
enum {
  CT_FLOAT32 = 0,
  CT_FLOAT64 = 1,
  CT_INT64 = 2,
  CT_INT32 = 3,
  CT_UINT8 = 4,
  CT_BOOL = 5,
  CT_BFLOAT16 = 6,
  CT_FLOAT16 = 7,
};

// Device types.
enum { CT_CPU = 0, CT_CUDA = 1 };

// Memory formats for 4-d tensors.
enum { CT_CONTIGUOUS = 0, CT_CHANNELS_LAST = 1 };

const char *ct_last_error(void);
void ct_free(ct_tensor *t);

// --- runtime ---------------------------------------------------------------
int ct_version(const char **out);
int ct_manual_seed(uint64_t seed);
int ct_set_num_threads(int n);
int ct_get_num_threads(int *out);
int ct_cpu_rng_state(ct_tensor **out);
int ct_set_cpu_rng_state(const ct_tensor *state);
// Opens libtorch_cuda.so (RTLD_NOW | RTLD_GLOBAL) so that its CUDA backend registers.
// Must run before any CUDA query in the process. A NULL path means the libtorch_cuda.so
// in the folder of the libtorch_cpu.so already loaded.
int ct_cuda_load(const char *library_path);
int ct_cuda_is_available(int *out);
int ct_cuda_device_count(int *out);
int ct_cuda_synchronize(void);
// Peak bytes held by libtorch's CUDA caching allocator on one device since the last
// reset: allocated to tensors, and reserved from the driver (allocated plus cache).
int ct_cuda_memory_peaks(int device_index, int64_t *allocated, int64_t *reserved);
int ct_cuda_reset_memory_peaks(int device_index);

// --- creation --------------------------------------------------------------
int ct_from_data(const void *data, int dtype, const int64_t *shape, int ndim, ct_tensor **out);
int ct_zeros(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out);
int ct_full(const int64_t *shape, int ndim, double value, int dtype, int device, int device_index,
            ct_tensor **out);
int ct_rand(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out);
int ct_randn(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out);
int ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int device, int device_index,
               ct_tensor **out);
int ct_randperm(int64_t n, int device, int device_index, ct_tensor **out);
int ct_arange(int64_t end, int dtype, int device, int device_index, ct_tensor **out);

// --- properties and data -----------------------------------------------------
int ct_dim(const ct_tensor *t, int *out);
// Writes min(dim, capacity) sizes.
int ct_sizes(const ct_tensor *t, int64_t *out, int capacity);
int ct_dtype(const ct_tensor *t, int *out);
int ct_device(const ct_tensor *t, int *type, int *index);
int ct_numel(const ct_tensor *t, int64_t *out);
int ct_is_contiguous(const ct_tensor *t, int memory_format, int *out);
// Copies the elements, in row-major order, into `dst` (`bytes` must equal numel * element size).
int ct_copy_to_host(const ct_tensor *t, void *dst, size_t bytes);
int ct_item(const ct_tensor *t, double *out);
int ct_to(const ct_tensor *t, int device, int device_index, int dtype, int non_blocking, ct_tensor **out);
int ct_contiguous(const ct_tensor *t, int memory_format, ct_tensor **out);
int ct_clone(const ct_tensor *t, ct_tensor **out);
int ct_detach(const ct_tensor *t, ct_tensor **out);
int ct_copy_(ct_tensor *dst, const ct_tensor *src);
int ct_fill_(ct_tensor *t, double value);

// --- autograd ----------------------------------------------------------------
int ct_requires_grad_(ct_tensor *t, int flag);
int ct_requires_grad(const ct_tensor *t, int *out);
// Writes NULL when the tensor has no gradient.
int ct_grad(const ct_tensor *t, ct_tensor **out);
int ct_clear_grad(ct_tensor *t);
int ct_backward(const ct_tensor *t);
int ct_is_grad_enabled(int *out);
int ct_set_grad_enabled(int flag);

// Mixed precision (autocast), thread-local. ct_autocast_enter turns autocast on for
// `device` with the lower-precision `dtype` and writes whether it was on before;
// ct_autocast_exit restores that and clears the cast-weight cache when the outermost
// scope ends.
int ct_autocast_enter(int device, int dtype, int *was_enabled);
int ct_autocast_exit(int device, int was_enabled);

// --- element-wise and reductions ----------------------------------------------
int ct_add(const ct_tensor *a, const ct_tensor *b, double alpha, ct_tensor **out);
int ct_sub(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_mul(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_div(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_add_scalar(const ct_tensor *a, double s, ct_tensor **out);
int ct_mul_scalar(const ct_tensor *a, double s, ct_tensor **out);
int ct_div_scalar(const ct_tensor *a, double s, ct_tensor **out);
int ct_pow_scalar(const ct_tensor *a, double exponent, ct_tensor **out);
int ct_neg(const ct_tensor *a, ct_tensor **out);
int ct_exp(const ct_tensor *a, ct_tensor **out);
int ct_log(const ct_tensor *a, ct_tensor **out);
int ct_sqrt(const ct_tensor *a, ct_tensor **out);
int ct_relu(const ct_tensor *a, ct_tensor **out);
int ct_relu_(ct_tensor *a);
int ct_clamp_min(const ct_tensor *a, double min, ct_tensor **out);
int ct_eq(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_isfinite_all(const ct_tensor *a, int *out);
int ct_sum(const ct_tensor *a, ct_tensor **out);
int ct_sum_dim(const ct_tensor *a, const int64_t *dims, int ndims, int keepdim, ct_tensor **out);
int ct_mean(const ct_tensor *a, ct_tensor **out);
int ct_mean_dim(const ct_tensor *a, const int64_t *dims, int ndims, int keepdim, ct_tensor **out);
int ct_linalg_vector_norm(const ct_tensor *a, double ord, const int64_t *dims, int ndims, int keepdim,
                          ct_tensor **out);
int ct_argmax(const ct_tensor *a, int64_t dim, int keepdim, ct_tensor **out);
int ct_logsumexp(const ct_tensor *a, int64_t dim, int keepdim, ct_tensor **out);
int ct_log_softmax(const ct_tensor *a, int64_t dim, ct_tensor **out);

// --- shape and indexing ---------------------------------------------------------
int ct_reshape(const ct_tensor *a, const int64_t *shape, int ndim, ct_tensor **out);
int ct_permute(const ct_tensor *a, const int64_t *dims, int ndim, ct_tensor **out);
int ct_transpose(const ct_tensor *a, int64_t dim0, int64_t dim1, ct_tensor **out);
int ct_unsqueeze(const ct_tensor *a, int64_t dim, ct_tensor **out);
int ct_squeeze_dim(const ct_tensor *a, int64_t dim, ct_tensor **out);
int ct_narrow(const ct_tensor *a, int64_t dim, int64_t start, int64_t length, ct_tensor **out);
int ct_select(const ct_tensor *a, int64_t dim, int64_t index, ct_tensor **out);
int ct_cat(const ct_tensor *const *tensors, int count, int64_t dim, ct_tensor **out);
int ct_index_select(const ct_tensor *a, int64_t dim, const ct_tensor *index, ct_tensor **out);
int ct_index_copy_(ct_tensor *a, int64_t dim, const ct_tensor *index, const ct_tensor *source);
int ct_gather(const ct_tensor *a, int64_t dim, const ct_tensor *index, ct_tensor **out);
int ct_scatter_add(const ct_tensor *a, int64_t dim, const ct_tensor *index, const ct_tensor *src,
                   ct_tensor **out);
int ct_topk(const ct_tensor *a, int64_t k, int64_t dim, int largest, ct_tensor **values,
            ct_tensor **indices);

// --- linear algebra and network layers -----------------------------------------
int ct_matmul(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_bmm(const ct_tensor *a, const ct_tensor *b, ct_tensor **out);
int ct_linear(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias, ct_tensor **out);
int ct_conv2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias, int64_t stride,
              int64_t padding, ct_tensor **out);
// Training mode updates running_mean and running_var in place.
int ct_batch_norm(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                  ct_tensor *running_mean, ct_tensor *running_var, int training, double momentum,
                  double eps, ct_tensor **out);
int ct_max_pool2d(const ct_tensor *input, int64_t kernel, int64_t stride, int64_t padding, ct_tensor **out);
int ct_adaptive_avg_pool2d(const ct_tensor *input, int64_t out_h, int64_t out_w, ct_tensor **out);
int ct_cross_entropy(const ct_tensor *logits, const ct_tensor *target, ct_tensor **out);

// --- optimizer -------------------------------------------------------------------
// SGD with momentum and weight decay, PyTorch's rule (dampening 0, no Nesterov):
//   d = grad + weight_decay * p;  buf = momentum * buf + d (buf = d on the first step);  p -= lr * d'
// `buffers[i]` is NULL before the first step; a new buffer handle is written there.
// Parameters without a gradient are skipped.
int ct_sgd_step(ct_tensor *const *params, ct_tensor **buffers, int count, double lr, double momentum,
                double weight_decay);

// --- private random generators -----------------------------------------------------
// A CPU generator owned by the caller, so that a training run's random draws do not
// depend on other users of libtorch's default generator in the same process.
typedef struct ct_generator ct_generator;
int ct_generator_new(uint64_t seed, ct_generator **out);
void ct_generator_free(ct_generator *g);
// The state as a uint8 tensor, the same layout as ct_cpu_rng_state.
int ct_generator_get_state(ct_generator *g, ct_tensor **out);
int ct_generator_set_state(ct_generator *g, const ct_tensor *state);
// CPU tensors drawn from `g`, as ct_rand and ct_randint draw from the default generator.
int ct_rand_generator(const int64_t *shape, int ndim, int dtype, ct_generator *g, ct_tensor **out);
int ct_randint_generator(int64_t low, int64_t high, const int64_t *shape, int ndim, ct_generator *g,
                         ct_tensor **out);

#ifdef __cplusplus
}
#endif

// c10d: rendezvous store and process group.
#include "ctorch_distributed.h"

#endif
