// c10d behind the C API of ctorch_distributed.h.
//
// ProcessGroupGloo.hpp includes gloo's headers, which the libtorch wheel does not ship; they
// come from Debian's libgloo-dev (a 2022 snapshot, older than the gloo built into libtorch
// 2.11). That is sound only because this file never touches a gloo type except through
// std::shared_ptr (the transport device) and never defines a gloo class or vtable: every gloo
// object is built and used inside libtorch_cpu.so. Do not call the header's inline members
// that reach into gloo objects (setTimeout, _getStore), and do not construct GlooStore here.
#define USE_C10D_GLOO 1

#include "ctorch_distributed.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <c10/util/Logging.h>

#include <chrono>
#include <string>
#include <vector>

struct ct_tensor {
  at::Tensor tensor;
};

struct ct_store {
  c10::intrusive_ptr<c10d::TCPStore> store;
};

struct ct_process_group {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

// Defined in ctorch.cpp, which owns the message slot that ct_last_error reads.
int ct_record_failure(const std::string &message);

namespace {

int fail(const std::string &message) { return ct_record_failure(message); }

const at::Tensor &ref(const ct_tensor *t) {
  if (t == nullptr) throw std::invalid_argument("a required tensor argument is null");
  return t->tensor;
}

// Gloo reduces host memory: returns a contiguous CPU tensor with `tensor`'s values.
at::Tensor host_copy(const at::Tensor &tensor) {
  return tensor.device().is_cpu() ? tensor.contiguous() : tensor.to(at::kCPU).contiguous();
}

// Sums `tensor` across ranks and returns the result on `tensor`'s device.
at::Tensor summed(c10d::ProcessGroupGloo &group, const at::Tensor &tensor) {
  std::vector<at::Tensor> buffers{host_copy(tensor).clone()};
  group.allreduce(buffers)->wait();
  return buffers[0].to(tensor.device());
}

// Sum across ranks whose gradient is the sum of the ranks' gradients, as in
// torch.distributed.nn.functional.all_reduce.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext *context, const at::Tensor &input,
                            int64_t group_address) {
    context->saved_data["group"] = group_address;
    auto *group = reinterpret_cast<c10d::ProcessGroupGloo *>(group_address);
    return summed(*group, input.detach());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *context,
                                                 torch::autograd::variable_list gradients) {
    auto *group = reinterpret_cast<c10d::ProcessGroupGloo *>(context->saved_data["group"].toInt());
    return {summed(*group, gradients[0]), at::Tensor()};
  }
};

} // namespace

#define CT_DIST_GUARD(...)                                                              \
  try {                                                                                 \
    __VA_ARGS__;                                                                        \
    return 0;                                                                           \
  } catch (const c10::Error &e) {                                                       \
    return fail(e.what_without_backtrace());                                            \
  } catch (const std::exception &e) {                                                   \
    return fail(e.what());                                                              \
  } catch (...) {                                                                       \
    return fail("unknown C++ exception in c10d");                                       \
  }

namespace {

// Silences libtorch's own log lines while a rank joins: a failed connection is reported
// as one error by the caller, and c10d would also print each retry with a C++ stack trace.
struct QuietLogs {
  int saved = FLAGS_caffe2_log_level;
  QuietLogs() { FLAGS_caffe2_log_level = 3; }  // c10's FATAL: nothing below it is printed
  ~QuietLogs() { FLAGS_caffe2_log_level = saved; }
};

}  // namespace

extern "C" {

int ct_store_create(const char *host, int port, int is_server, int64_t timeout_ms, ct_store **out) {
  CT_DIST_GUARD({
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = is_server != 0;
    options.waitWorkers = false;
    // A client's connection is retried once after a first timeout, so it would take twice
    // the limit to give up; connect with half of it, then use the whole limit for waits.
    options.timeout = std::chrono::milliseconds(is_server != 0 ? timeout_ms : std::max<int64_t>(timeout_ms / 2, 1));
    QuietLogs quiet;
    auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
    store->setTimeout(std::chrono::milliseconds(timeout_ms));
    *out = new ct_store{std::move(store)};
  })
}

void ct_store_free(ct_store *store) { delete store; }

int ct_store_port(const ct_store *store, int *out) { CT_DIST_GUARD(*out = store->store->getPort()) }

int ct_store_set(ct_store *store, const char *key, const char *value) {
  CT_DIST_GUARD({
    std::string text(value);
    store->store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
  })
}

int ct_store_check(ct_store *store, const char *key, int *exists) {
  CT_DIST_GUARD(*exists = store->store->check({std::string(key)}) ? 1 : 0)
}

int ct_process_group_create(ct_store *store, int rank, int world_size, const char *host, int64_t timeout_ms,
                            ct_process_group **out) {
  CT_DIST_GUARD({
    QuietLogs quiet;
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store->store, rank, world_size, options);
    *out = new ct_process_group{std::move(group)};
  })
}

void ct_process_group_free(ct_process_group *group) { delete group; }

int ct_all_reduce_sum(ct_process_group *group, ct_tensor *const *tensors, int count) {
  CT_DIST_GUARD({
    if (count == 0) return 0;
    std::vector<at::Tensor> flat;
    for (int i = 0; i < count; i++) flat.push_back(host_copy(ref(tensors[i])).reshape({-1}));
    std::vector<at::Tensor> buffers{at::cat(flat)};
    group->group->allreduce(buffers)->wait();
    c10::NoGradGuard no_grad;
    int64_t offset = 0;
    for (int i = 0; i < count; i++) {
      at::Tensor &target = tensors[i]->tensor;
      int64_t length = target.numel();
      target.copy_(buffers[0].narrow(0, offset, length).view(target.sizes()));
      offset += length;
    }
  })
}

int ct_all_gather(ct_process_group *group, const ct_tensor *input, ct_tensor **out) {
  CT_DIST_GUARD({
    at::Tensor local = host_copy(ref(input).detach());
    std::vector<int64_t> shape = local.sizes().vec();
    if (shape.empty()) throw std::invalid_argument("all_gather needs a tensor with at least one dimension");
    shape[0] *= group->group->getSize();
    at::Tensor gathered = at::empty(shape, local.options());
    group->group->_allgather_base(gathered, local)->wait();
    *out = new ct_tensor{gathered.to(ref(input).device())};
  })
}

int ct_broadcast(ct_process_group *group, ct_tensor *tensor, int root) {
  CT_DIST_GUARD({
    c10d::BroadcastOptions options;
    options.rootRank = root;
    std::vector<at::Tensor> buffers{host_copy(ref(tensor)).clone()};
    group->group->broadcast(buffers, options)->wait();
    c10::NoGradGuard no_grad;
    tensor->tensor.copy_(buffers[0]);
  })
}

int ct_barrier(ct_process_group *group) { CT_DIST_GUARD(group->group->barrier()->wait()) }

int ct_all_reduce_sum_autograd(ct_process_group *group, const ct_tensor *input, ct_tensor **out) {
  CT_DIST_GUARD({
    auto address = reinterpret_cast<int64_t>(group->group.get());
    *out = new ct_tensor{AllReduceSum::apply(ref(input), address)};
  })
}

} // extern "C"
