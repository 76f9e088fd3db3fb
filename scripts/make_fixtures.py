#!/usr/bin/env python3
"""Compute the objective fixtures with PyTorch, as values independent of swift-npid's code.

    make_fixtures.py [OUT]

The inputs are fixed and small: features, bank, dataset indices, noise indices, tau, Z
and m. From them the script computes each loss of the method, its gradient with respect
to the features, the bank after a momentum update and the weighted-kNN class scores, all
in float64. It writes them to OUT (default Tests/NPIDTests/Fixtures/objective.safetensors). The Swift suite
ObjectiveFixtureTests compares swift-npid with that file; CI only reads it, so rerun this
script and commit the file whenever the inputs or a formula change.

Every formula below is written from the method's definition (Wu et al., CVPR 2018), not
translated from the Swift code. Needs only PyTorch (checked with 2.11.0, CPU).
"""

import json
import os
import struct
import sys

import torch

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "NPIDTests", "Fixtures",
                           "objective.safetensors")

# Sizes: N bank rows of dimension D, a batch of B samples, K noise rows per sample, Q kNN queries.
N, D, B, K, Q, CLASSES = 7, 5, 3, 4, 4, 3
TEMPERATURE = 0.2
FIXED_Z = 40.0
Z_RATE = 0.25
BANK_MOMENTUM = 0.5
PROXIMAL_WEIGHT = 0.3
NEIGHBORS = 3
# NCE's guard against log(0), as in the original release: h = P_m / (P_m + K·P_n + eps).
EPSILON = 1e-7


def unit_rows(x):
    return x / x.norm(dim=1, keepdim=True)


def inputs():
    """Return the fixed inputs: random unit rows from a seeded generator, hand-picked indices."""
    generator = torch.Generator().manual_seed(1805_01978)
    normal = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)
    return {
        "bank": unit_rows(normal(N, D)),
        "features": unit_rows(normal(B, D)),
        "indices": torch.tensor([4, 0, 6]),
        # Sample 0 draws its own row 4 as noise, and rows repeat, as uniform draws may.
        "noise": torch.tensor([[1, 4, 2, 2], [6, 3, 3, 5], [0, 1, 5, 6]]),
        # Index 5 appears twice, so the update must average its two features.
        "update_indices": torch.tensor([5, 2, 5, 0]),
        "update_features": unit_rows(normal(4, D)),
        "queries": unit_rows(normal(Q, D)),
        "bank_labels": torch.tensor([0, 1, 2, 0, 1, 2, 1]),
    }


def sampled_similarities(features, bank, indices, noise):
    """Return s [B, K+1]: column 0 is v_i·f for the sample's own row, columns 1..K the noise rows."""
    rows = torch.cat([indices[:, None], noise], dim=1)
    return (bank[rows] * features[:, None, :]).sum(dim=2)


def z_estimate(similarities):
    """Return Z = N · mean of exp(s / tau) over every column of the batch."""
    return N * torch.exp(similarities / TEMPERATURE).mean().item()


def nce(features, bank, indices, noise, z):
    """Return −[log h(i) + Σ_noise log(1 − h(j))] averaged over the batch, h = P_m / (P_m + K/N)."""
    p_model = torch.exp(sampled_similarities(features, bank, indices, noise) / TEMPERATURE) / z
    k_pn = K / N
    h_positive = p_model[:, 0] / (p_model[:, 0] + k_pn + EPSILON)
    one_minus_h_noise = k_pn / (p_model[:, 1:] + k_pn + EPSILON)
    return -(torch.log(h_positive).sum() + torch.log(one_minus_h_noise).sum()) / features.shape[0]


def softmax_cross_entropy(features, bank, indices, noise):
    """Return the mean of −log softmax(s / tau)[0] over the positive and the K noise rows."""
    logits = sampled_similarities(features, bank, indices, noise) / TEMPERATURE
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


def full_softmax(features, bank, indices):
    """Return the mean of −log P(i | f), P(i | f) = exp(v_i·f / tau) / Σ_j exp(v_j·f / tau) over all N rows."""
    logits = features @ bank.T / TEMPERATURE
    return (torch.logsumexp(logits, dim=1) - logits[torch.arange(features.shape[0]), indices]).mean()


def proximal_penalty(features, bank, indices):
    """Return lambda · mean over the batch of ||f_i − v_i||²."""
    return PROXIMAL_WEIGHT * ((features - bank[indices]) ** 2).sum(dim=1).mean()


def value_and_gradient(loss, features):
    """Return the loss and d loss / d features."""
    leaf = features.clone().requires_grad_(True)
    value = loss(leaf)
    value.backward()
    return value.detach().reshape(()), leaf.grad.detach()


def updated_bank(bank, indices, features):
    """Return the bank after v_i ← normalise(m·v_i + (1 − m)·f̄_i), f̄_i the mean of the batch's features for i."""
    result = bank.clone()
    for index in sorted(set(indices.tolist())):
        mean_feature = features[indices == index].mean(dim=0)
        mixed = BANK_MOMENTUM * bank[index] + (1 - BANK_MOMENTUM) * mean_feature
        result[index] = mixed / mixed.norm()
    return result


def knn_scores(queries, bank, labels, neighbors):
    """Return [Q, C]: Σ exp(s / sigma) over the query's k most similar rows of each class, sigma = tau."""
    scores = torch.zeros(queries.shape[0], CLASSES, dtype=torch.float64)
    for q in range(queries.shape[0]):
        similarities = bank @ queries[q]
        order = sorted(range(bank.shape[0]), key=lambda j: -similarities[j].item())
        for j in order[:neighbors]:
            scores[q, labels[j]] += torch.exp(similarities[j] / TEMPERATURE)
    return scores


def fixtures():
    x = inputs()
    bank, features, indices, noise = x["bank"], x["features"], x["indices"], x["noise"]
    estimated_z = z_estimate(sampled_similarities(features, bank, indices, noise))
    moving_z = (1 - Z_RATE) * FIXED_Z + Z_RATE * estimated_z
    out = dict(x)

    def record(name, loss):
        out[name + "_loss"], out[name + "_gradient"] = value_and_gradient(loss, features)

    record("nce_fixed", lambda f: nce(f, bank, indices, noise, FIXED_Z))
    record("nce_first_batch", lambda f: nce(f, bank, indices, noise, estimated_z))
    record("nce_momentum", lambda f: nce(f, bank, indices, noise, moving_z))
    record("softmax_ce", lambda f: softmax_cross_entropy(f, bank, indices, noise))
    record("full_softmax", lambda f: full_softmax(f, bank, indices))
    record("proximal", lambda f: proximal_penalty(f, bank, indices))
    out["estimated_z"] = torch.tensor(estimated_z, dtype=torch.float64)
    out["momentum_z"] = torch.tensor(moving_z, dtype=torch.float64)
    out["bank_after_update"] = updated_bank(bank, x["update_indices"], x["update_features"])
    out["knn_scores"] = knn_scores(x["queries"], bank, x["bank_labels"], NEIGHBORS)
    # k above N: every row votes.
    out["knn_scores_all_rows"] = knn_scores(x["queries"], bank, x["bank_labels"], N)
    return out


def metadata():
    return {"writer": "scripts/make_fixtures.py", "torch": torch.__version__,
            "temperature": repr(TEMPERATURE), "fixed_z": repr(FIXED_Z), "z_rate": repr(Z_RATE),
            "bank_momentum": repr(BANK_MOMENTUM), "proximal_weight": repr(PROXIMAL_WEIGHT),
            "negatives": str(K), "neighbors": str(NEIGHBORS), "classes": str(CLASSES)}


def write_safetensors(path, tensors, metadata):
    """Write float64 and int64 tensors as safetensors: 8-byte little-endian header size, JSON header, data."""
    dtypes = {torch.float64: "F64", torch.int64: "I64"}
    header = {"__metadata__": metadata}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().contiguous()
        blob = bytes(tensor.reshape(-1).view(torch.uint8).tolist())
        header[name] = {"dtype": dtypes[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as file:
        file.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    if sys.byteorder != "little":
        sys.exit("safetensors stores little-endian values; run this on a little-endian machine")
    out = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_safetensors(out, fixtures(), metadata())
    print(f"wrote {os.path.normpath(out)} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
