// The C shim over ATen and autograd. Each entry point catches every exception and
// turns it into a status code plus a thread-local message, so a libtorch error never
// aborts the process and never unwinds through Swift frames.
#include "ctorch.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/CachingDeviceAllocator.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>
#include <torch/csrc/autograd/variable.h>

#include <dlfcn.h>
#include <link.h>

#include <cstring>
#include <string>
#include <vector>

struct ct_tensor {
  at::Tensor tensor;
};

namespace {

thread_local std::string last_error;

int fail(const std::string &message) {
  last_error = message;
  return 1;
}

ct_tensor *wrap(at::Tensor t) { return new ct_tensor{std::move(t)}; }

at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
  case CT_FLOAT32: return at::kFloat;
  case CT_FLOAT64: return at::kDouble;
  case CT_INT64: return at::kLong;
  case CT_INT32: return at::kInt;
  case CT_UINT8: return at::kByte;
  case CT_BOOL: return at::kBool;
  case CT_BFLOAT16: return at::kBFloat16;
  case CT_FLOAT16: return at::kHalf;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int dtype_code(at::ScalarType type) {
  switch (type) {
  case at::kFloat: return CT_FLOAT32;
  case at::kDouble: return CT_FLOAT64;
  case at::kLong: return CT_INT64;
  case at::kInt: return CT_INT32;
  case at::kByte: return CT_UINT8;
  case at::kBool: return CT_BOOL;
  case at::kBFloat16: return CT_BFLOAT16;
  case at::kHalf: return CT_FLOAT16;
  default: throw std::invalid_argument(std::string("unsupported dtype ") + c10::toString(type));
  }
}

at::Device device_of(int type, int index) {
  switch (type) {
  case CT_CPU: return at::Device(at::kCPU);
  case CT_CUDA: return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("unknown device type code " + std::to_string(type));
}

at::TensorOptions options(int dtype, int device, int index) {
  return at::TensorOptions().dtype(scalar_type(dtype)).device(device_of(device, index));
}

at::IntArrayRef shape_of(const int64_t *shape, int ndim) {
  return at::IntArrayRef(shape, static_cast<size_t>(ndim));
}

at::MemoryFormat memory_format(int format) {
  return format == CT_CHANNELS_LAST ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

const at::Tensor &ref(const ct_tensor *t) {
  if (t == nullptr) throw std::invalid_argument("a required tensor argument is null");
  return t->tensor;
}

c10::optional<at::Tensor> optional_ref(const ct_tensor *t) {
  if (t == nullptr) return c10::nullopt;
  return t->tensor;
}

} // namespace

// Records a failure for ct_last_error; distributed.cpp reports through it too.
int ct_record_failure(const std::string &message) { return fail(message); }

// Runs BODY and converts any exception into a failure status. c10::Error carries a
// C++ backtrace in what(); the message without it is what a user can act on.
#define CT_GUARD(...)                                                                   \
  try {                                                                                 \
    __VA_ARGS__;                                                                        \
    return 0;                                                                           \
  } catch (const c10::Error &e) {                                                       \
    return fail(e.what_without_backtrace());                                            \
  } catch (const std::exception &e) {                                                   \
    return fail(e.what());                                                              \
  } catch (...) {                                                                       \
    return fail("unknown C++ exception in libtorch");                                   \
  }

#define CT_UNARY(NAME, EXPR)                                                            \
  int NAME(const ct_tensor *a, ct_tensor **out) { CT_GUARD(*out = wrap(EXPR(ref(a)))) }

#define CT_BINARY(NAME, EXPR)                                                           \
  int NAME(const ct_tensor *a, const ct_tensor *b, ct_tensor **out) {                   \
    CT_GUARD(*out = wrap(EXPR(ref(a), ref(b))))                                         \
  }

extern "C" {

const char *ct_last_error(void) { return last_error.c_str(); }

void ct_free(ct_tensor *t) { delete t; }

// --- runtime -------------------------------------------------------------------

int ct_version(const char **out) { CT_GUARD(*out = TORCH_VERSION) }

int ct_manual_seed(uint64_t seed) { CT_GUARD(at::manual_seed(seed)) }

int ct_set_num_threads(int n) { CT_GUARD(at::set_num_threads(n)) }

int ct_get_num_threads(int *out) { CT_GUARD(*out = at::get_num_threads()) }

int ct_cpu_rng_state(ct_tensor **out) {
  CT_GUARD({
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    *out = wrap(generator.get_state());
  })
}

int ct_set_cpu_rng_state(const ct_tensor *state) {
  CT_GUARD({
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(ref(state));
  })
}

int ct_cuda_load(const char *library_path) {
  CT_GUARD({
    std::string path = library_path != nullptr ? library_path : "";
    if (path.empty()) {
      // libtorch_cuda.so sits beside the libtorch_cpu.so this process already uses.
      path = "libtorch_cuda.so";
      void *cpu_library = dlopen("libtorch_cpu.so", RTLD_NOW | RTLD_NOLOAD);
      struct link_map *map = nullptr;
      if (cpu_library != nullptr && dlinfo(cpu_library, RTLD_DI_LINKMAP, &map) == 0 && map != nullptr &&
          map->l_name != nullptr) {
        std::string cpu_path = map->l_name;
        auto slash = cpu_path.find_last_of('/');
        if (slash != std::string::npos) path = cpu_path.substr(0, slash + 1) + "libtorch_cuda.so";
      }
      if (cpu_library != nullptr) dlclose(cpu_library);
    }
    void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
    if (handle == nullptr) {
      const char *reason = dlerror();
      return fail("cannot load " + path + ": " + (reason ? reason : "unknown reason"));
    }
  })
}

int ct_cuda_is_available(int *out) { CT_GUARD(*out = at::hasCUDA() ? 1 : 0) }

int ct_cuda_device_count(int *out) {
  CT_GUARD(*out = at::hasCUDA() ? static_cast<int>(at::detail::getCUDAHooks().deviceCount()) : 0)
}

int ct_cuda_synchronize(void) {
  CT_GUARD({
    // A tiny device-to-host copy waits for all queued work on the current stream.
    if (at::hasCUDA()) at::zeros({1}, at::TensorOptions().device(at::kCUDA)).cpu();
  })
}

int ct_cuda_memory_peaks(int device_index, int64_t *allocated, int64_t *reserved) {
  CT_GUARD({
    if (!at::hasCUDA()) return fail("CUDA is not available, so there are no GPU memory statistics");
    auto stats = c10::getDeviceAllocator(at::kCUDA)->getDeviceStats(static_cast<c10::DeviceIndex>(device_index));
    auto aggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
    *allocated = stats.allocated_bytes[aggregate].peak;
    *reserved = stats.reserved_bytes[aggregate].peak;
  })
}

int ct_cuda_reset_memory_peaks(int device_index) {
  CT_GUARD({
    if (!at::hasCUDA()) return fail("CUDA is not available, so there are no GPU memory statistics");
    c10::getDeviceAllocator(at::kCUDA)->resetPeakStats(static_cast<c10::DeviceIndex>(device_index));
  })
}

// --- creation ---------------------------------------------------------------------

int ct_from_data(const void *data, int dtype, const int64_t *shape, int ndim, ct_tensor **out) {
  CT_GUARD({
    auto type = scalar_type(dtype);
    auto t = at::empty(shape_of(shape, ndim), at::TensorOptions().dtype(type));
    size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    if (bytes > 0) std::memcpy(t.data_ptr(), data, bytes);
    *out = wrap(std::move(t));
  })
}

int ct_zeros(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::zeros(shape_of(shape, ndim), options(dtype, device, device_index))))
}

int ct_full(const int64_t *shape, int ndim, double value, int dtype, int device, int device_index,
            ct_tensor **out) {
  CT_GUARD(*out = wrap(at::full(shape_of(shape, ndim), value, options(dtype, device, device_index))))
}

int ct_rand(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::rand(shape_of(shape, ndim), options(dtype, device, device_index))))
}

int ct_randn(const int64_t *shape, int ndim, int dtype, int device, int device_index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::randn(shape_of(shape, ndim), options(dtype, device, device_index))))
}

int ct_randint(int64_t low, int64_t high, const int64_t *shape, int ndim, int device, int device_index,
               ct_tensor **out) {
  CT_GUARD(*out = wrap(at::randint(low, high, shape_of(shape, ndim), options(CT_INT64, device, device_index))))
}

int ct_randperm(int64_t n, int device, int device_index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::randperm(n, options(CT_INT64, device, device_index))))
}

int ct_arange(int64_t end, int dtype, int device, int device_index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::arange(end, options(dtype, device, device_index))))
}

// --- properties and data -------------------------------------------------------------

int ct_dim(const ct_tensor *t, int *out) { CT_GUARD(*out = static_cast<int>(ref(t).dim())) }

int ct_sizes(const ct_tensor *t, int64_t *out, int capacity) {
  CT_GUARD({
    auto sizes = ref(t).sizes();
    for (int i = 0; i < capacity && i < static_cast<int>(sizes.size()); i++) out[i] = sizes[i];
  })
}

int ct_dtype(const ct_tensor *t, int *out) { CT_GUARD(*out = dtype_code(ref(t).scalar_type())) }

int ct_device(const ct_tensor *t, int *type, int *index) {
  CT_GUARD({
    auto device = ref(t).device();
    *type = device.is_cuda() ? CT_CUDA : CT_CPU;
    *index = device.has_index() ? device.index() : 0;
  })
}

int ct_numel(const ct_tensor *t, int64_t *out) { CT_GUARD(*out = ref(t).numel()) }

int ct_is_contiguous(const ct_tensor *t, int format, int *out) {
  CT_GUARD(*out = ref(t).is_contiguous(memory_format(format)) ? 1 : 0)
}

int ct_copy_to_host(const ct_tensor *t, void *dst, size_t bytes) {
  CT_GUARD({
    auto host = ref(t).detach().to(at::kCPU).contiguous();
    size_t expected = static_cast<size_t>(host.numel()) * host.element_size();
    if (expected != bytes) {
      return fail("copy to host expected a buffer of " + std::to_string(expected) + " bytes, got " +
                  std::to_string(bytes));
    }
    if (bytes > 0) std::memcpy(dst, host.data_ptr(), bytes);
  })
}

int ct_item(const ct_tensor *t, double *out) { CT_GUARD(*out = ref(t).item<double>()) }

int ct_to(const ct_tensor *t, int device, int device_index, int dtype, int non_blocking, ct_tensor **out) {
  CT_GUARD(*out = wrap(ref(t).to(device_of(device, device_index), scalar_type(dtype), non_blocking != 0)))
}

int ct_contiguous(const ct_tensor *t, int format, ct_tensor **out) {
  CT_GUARD(*out = wrap(ref(t).contiguous(memory_format(format))))
}

CT_UNARY(ct_clone, at::clone)

int ct_detach(const ct_tensor *t, ct_tensor **out) { CT_GUARD(*out = wrap(ref(t).detach())) }

int ct_copy_(ct_tensor *dst, const ct_tensor *src) { CT_GUARD(dst->tensor.copy_(ref(src))) }

int ct_fill_(ct_tensor *t, double value) { CT_GUARD(t->tensor.fill_(value)) }

// --- autograd ---------------------------------------------------------------------

int ct_requires_grad_(ct_tensor *t, int flag) { CT_GUARD(t->tensor.requires_grad_(flag != 0)) }

int ct_requires_grad(const ct_tensor *t, int *out) { CT_GUARD(*out = ref(t).requires_grad() ? 1 : 0) }

int ct_grad(const ct_tensor *t, ct_tensor **out) {
  CT_GUARD({
    const auto &grad = ref(t).grad();
    *out = grad.defined() ? wrap(grad) : nullptr;
  })
}

int ct_clear_grad(ct_tensor *t) { CT_GUARD(t->tensor.mutable_grad().reset()) }

int ct_backward(const ct_tensor *t) { CT_GUARD(ref(t).backward()) }

int ct_is_grad_enabled(int *out) { CT_GUARD(*out = c10::GradMode::is_enabled() ? 1 : 0) }

int ct_set_grad_enabled(int flag) { CT_GUARD(c10::GradMode::set_enabled(flag != 0)) }

int ct_autocast_enter(int device, int dtype, int *was_enabled) {
  CT_GUARD({
    auto type = device_of(device, 0).type();
    *was_enabled = at::autocast::is_autocast_enabled(type) ? 1 : 0;
    at::autocast::set_autocast_dtype(type, scalar_type(dtype));
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
  })
}

int ct_autocast_exit(int device, int was_enabled) {
  CT_GUARD({
    auto type = device_of(device, 0).type();
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type, was_enabled != 0);
  })
}

// --- element-wise and reductions ---------------------------------------------------

int ct_add(const ct_tensor *a, const ct_tensor *b, double alpha, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::add(ref(a), ref(b), alpha)))
}

CT_BINARY(ct_sub, at::sub)
CT_BINARY(ct_mul, at::mul)
CT_BINARY(ct_div, at::div)
CT_BINARY(ct_eq, at::eq)
CT_BINARY(ct_matmul, at::matmul)
CT_BINARY(ct_bmm, at::bmm)

int ct_add_scalar(const ct_tensor *a, double s, ct_tensor **out) { CT_GUARD(*out = wrap(at::add(ref(a), s))) }

int ct_mul_scalar(const ct_tensor *a, double s, ct_tensor **out) { CT_GUARD(*out = wrap(at::mul(ref(a), s))) }

int ct_div_scalar(const ct_tensor *a, double s, ct_tensor **out) { CT_GUARD(*out = wrap(at::div(ref(a), s))) }

int ct_pow_scalar(const ct_tensor *a, double exponent, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::pow(ref(a), exponent)))
}

CT_UNARY(ct_neg, at::neg)
CT_UNARY(ct_exp, at::exp)
CT_UNARY(ct_log, at::log)
CT_UNARY(ct_sqrt, at::sqrt)
CT_UNARY(ct_relu, at::relu)
CT_UNARY(ct_sum, at::sum)
CT_UNARY(ct_mean, at::mean)

int ct_relu_(ct_tensor *a) { CT_GUARD(at::relu_(a->tensor)) }

int ct_clamp_min(const ct_tensor *a, double min, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::clamp_min(ref(a), min)))
}

int ct_isfinite_all(const ct_tensor *a, int *out) {
  CT_GUARD(*out = at::isfinite(ref(a)).all().item<bool>() ? 1 : 0)
}

int ct_sum_dim(const ct_tensor *a, const int64_t *dims, int ndims, int keepdim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::sum(ref(a), shape_of(dims, ndims), keepdim != 0)))
}

int ct_mean_dim(const ct_tensor *a, const int64_t *dims, int ndims, int keepdim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::mean(ref(a), shape_of(dims, ndims), keepdim != 0)))
}

int ct_linalg_vector_norm(const ct_tensor *a, double ord, const int64_t *dims, int ndims, int keepdim,
                          ct_tensor **out) {
  CT_GUARD(*out = wrap(at::linalg_vector_norm(ref(a), ord, shape_of(dims, ndims), keepdim != 0)))
}

int ct_argmax(const ct_tensor *a, int64_t dim, int keepdim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::argmax(ref(a), dim, keepdim != 0)))
}

int ct_logsumexp(const ct_tensor *a, int64_t dim, int keepdim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::logsumexp(ref(a), {dim}, keepdim != 0)))
}

int ct_log_softmax(const ct_tensor *a, int64_t dim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::log_softmax(ref(a), dim)))
}

// --- shape and indexing ------------------------------------------------------------

int ct_reshape(const ct_tensor *a, const int64_t *shape, int ndim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::reshape(ref(a), shape_of(shape, ndim))))
}

int ct_permute(const ct_tensor *a, const int64_t *dims, int ndim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::permute(ref(a), shape_of(dims, ndim))))
}

int ct_transpose(const ct_tensor *a, int64_t dim0, int64_t dim1, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::transpose(ref(a), dim0, dim1)))
}

int ct_unsqueeze(const ct_tensor *a, int64_t dim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::unsqueeze(ref(a), dim)))
}

int ct_squeeze_dim(const ct_tensor *a, int64_t dim, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::squeeze(ref(a), dim)))
}

int ct_narrow(const ct_tensor *a, int64_t dim, int64_t start, int64_t length, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::narrow(ref(a), dim, start, length)))
}

int ct_select(const ct_tensor *a, int64_t dim, int64_t index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::select(ref(a), dim, index)))
}

int ct_cat(const ct_tensor *const *tensors, int count, int64_t dim, ct_tensor **out) {
  CT_GUARD({
    std::vector<at::Tensor> list;
    list.reserve(count);
    for (int i = 0; i < count; i++) list.push_back(ref(tensors[i]));
    *out = wrap(at::cat(list, dim));
  })
}

int ct_index_select(const ct_tensor *a, int64_t dim, const ct_tensor *index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::index_select(ref(a), dim, ref(index))))
}

int ct_index_copy_(ct_tensor *a, int64_t dim, const ct_tensor *index, const ct_tensor *source) {
  CT_GUARD(a->tensor.index_copy_(dim, ref(index), ref(source)))
}

int ct_gather(const ct_tensor *a, int64_t dim, const ct_tensor *index, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::gather(ref(a), dim, ref(index))))
}

int ct_scatter_add(const ct_tensor *a, int64_t dim, const ct_tensor *index, const ct_tensor *src,
                   ct_tensor **out) {
  CT_GUARD(*out = wrap(at::scatter_add(ref(a), dim, ref(index), ref(src))))
}

int ct_topk(const ct_tensor *a, int64_t k, int64_t dim, int largest, ct_tensor **values,
            ct_tensor **indices) {
  CT_GUARD({
    auto result = at::topk(ref(a), k, dim, largest != 0, /*sorted=*/true);
    *values = wrap(std::get<0>(result));
    *indices = wrap(std::get<1>(result));
  })
}

// --- linear algebra and network layers ------------------------------------------------

int ct_linear(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::linear(ref(input), ref(weight), optional_ref(bias))))
}

int ct_conv2d(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias, int64_t stride,
              int64_t padding, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::conv2d(ref(input), ref(weight), optional_ref(bias), {stride, stride},
                                  {padding, padding})))
}

int ct_batch_norm(const ct_tensor *input, const ct_tensor *weight, const ct_tensor *bias,
                  ct_tensor *running_mean, ct_tensor *running_var, int training, double momentum,
                  double eps, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::batch_norm(ref(input), optional_ref(weight), optional_ref(bias),
                                      optional_ref(running_mean), optional_ref(running_var),
                                      training != 0, momentum, eps, /*cudnn_enabled=*/true)))
}

int ct_max_pool2d(const ct_tensor *input, int64_t kernel, int64_t stride, int64_t padding, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::max_pool2d(ref(input), {kernel, kernel}, {stride, stride}, {padding, padding})))
}

int ct_adaptive_avg_pool2d(const ct_tensor *input, int64_t out_h, int64_t out_w, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::adaptive_avg_pool2d(ref(input), {out_h, out_w})))
}

int ct_cross_entropy(const ct_tensor *logits, const ct_tensor *target, ct_tensor **out) {
  CT_GUARD(*out = wrap(at::cross_entropy_loss(ref(logits), ref(target))))
}

// --- optimizer ---------------------------------------------------------------------------

int ct_sgd_step(ct_tensor *const *params, ct_tensor **buffers, int count, double lr, double momentum,
                double weight_decay) {
  CT_GUARD({
    c10::NoGradGuard no_grad;
    std::vector<at::Tensor> weights, grads, bufs;
    std::vector<int> slots;
    for (int i = 0; i < count; i++) {
      const auto &grad = ref(params[i]).grad();
      if (!grad.defined()) continue;
      weights.push_back(params[i]->tensor);
      grads.push_back(grad);
      slots.push_back(i);
    }
    if (weights.empty()) return 0;

    // d = grad + weight_decay * p, into fresh tensors so .grad stays as backward left it.
    auto steps = weight_decay != 0 ? at::_foreach_add(grads, weights, weight_decay) : at::_foreach_mul(grads, 1.0);

    if (momentum != 0) {
      for (size_t j = 0; j < slots.size(); j++) {
        ct_tensor *&slot = buffers[slots[j]];
        if (slot == nullptr) {
          slot = wrap(steps[j].clone());
        } else {
          slot->tensor.mul_(momentum).add_(steps[j]);
        }
        bufs.push_back(slot->tensor);
      }
      at::_foreach_add_(weights, bufs, -lr);
    } else {
      at::_foreach_add_(weights, steps, -lr);
    }
  })
}

// --- private random generators -------------------------------------------------------

struct ct_generator {
  at::Generator generator;
};

int ct_generator_new(uint64_t seed, ct_generator **out) {
  CT_GUARD(*out = new ct_generator{at::detail::createCPUGenerator(seed)})
}

void ct_generator_free(ct_generator *g) { delete g; }

int ct_generator_get_state(ct_generator *g, ct_tensor **out) {
  CT_GUARD({
    if (g == nullptr) throw std::invalid_argument("the generator argument is null");
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    *out = wrap(g->generator.get_state());
  })
}

int ct_generator_set_state(ct_generator *g, const ct_tensor *state) {
  CT_GUARD({
    if (g == nullptr) throw std::invalid_argument("the generator argument is null");
    std::lock_guard<std::mutex> lock(g->generator.mutex());
    g->generator.set_state(ref(state));
  })
}

int ct_rand_generator(const int64_t *shape, int ndim, int dtype, ct_generator *g, ct_tensor **out) {
  CT_GUARD({
    if (g == nullptr) throw std::invalid_argument("the generator argument is null");
    *out = wrap(at::rand(shape_of(shape, ndim), g->generator, options(dtype, CT_CPU, 0)));
  })
}

int ct_randint_generator(int64_t low, int64_t high, const int64_t *shape, int ndim, ct_generator *g,
                         ct_tensor **out) {
  CT_GUARD({
    if (g == nullptr) throw std::invalid_argument("the generator argument is null");
    *out = wrap(at::randint(low, high, shape_of(shape, ndim), g->generator, options(CT_INT64, CT_CPU, 0)));
  })
}

} // extern "C"
