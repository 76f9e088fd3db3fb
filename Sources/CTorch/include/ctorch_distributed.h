// A plain C view of c10d, libtorch's distributed engine: a TCPStore for rendezvous and a
// Gloo process group for collectives over TCP. Same conventions as ctorch.h: 0 on success,
// 1 on failure with the message in ct_last_error(), and no C++ exception crosses.
//
// Collectives take CPU or CUDA tensors. Gloo works on host memory, so CUDA tensors are
// copied to the host and back.
#ifndef CTORCH_DISTRIBUTED_H
#define CTORCH_DISTRIBUTED_H

#include "ctorch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ct_store ct_store;
typedef struct ct_process_group ct_process_group;

// Connects to the TCPStore at host:port, or hosts it there when is_server is non-zero (port 0
// picks a free port; ct_store_port returns it). A server waits for nothing: clients join later.
int ct_store_create(const char *host, int port, int is_server, int64_t timeout_ms, ct_store **out);
void ct_store_free(ct_store *store);
int ct_store_port(const ct_store *store, int *out);
int ct_store_set(ct_store *store, const char *key, const char *value);
// Writes 1 to *exists when the key is set, else 0, without waiting.
int ct_store_check(ct_store *store, const char *key, int *exists);

// Joins the Gloo process group of world_size ranks that rendezvous through `store`, binding
// to interface address `host` (an address of this machine that the other ranks can reach).
// Collectives that do not complete within timeout_ms fail.
int ct_process_group_create(ct_store *store, int rank, int world_size, const char *host, int64_t timeout_ms,
                            ct_process_group **out);
void ct_process_group_free(ct_process_group *group);

// Sums the tensors in place across ranks; every rank ends with the same values. The tensors
// travel as one flat buffer, so they must share one dtype.
int ct_all_reduce_sum(ct_process_group *group, ct_tensor *const *tensors, int count);
// Concatenates every rank's `input` along dim 0 in rank order: [world_size * n, ...].
// Every rank must pass the same shape and dtype.
int ct_all_gather(ct_process_group *group, const ct_tensor *input, ct_tensor **out);
// Copies root's `tensor` into `tensor` on every other rank.
int ct_broadcast(ct_process_group *group, ct_tensor *tensor, int root);
int ct_barrier(ct_process_group *group);
// Differentiable sum across ranks: the result is the sum of every rank's `input`, and its
// backward sums the incoming gradients across ranks the same way. Every rank must run the
// forward and the backward in the same order.
int ct_all_reduce_sum_autograd(ct_process_group *group, const ct_tensor *input, ct_tensor **out);

#ifdef __cplusplus
}
#endif

#endif
