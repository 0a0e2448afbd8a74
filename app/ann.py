"""Dense (ANN) index for chunk (and sentence) vectors: exact search while it is fast enough, IVF above.

Every vector is L2-normalised, so every index here ranks by inner product (= cosine). Sizes and parameters
come from `python -m tools.bench --scale 100k|1m` on this 2-core machine (bench/README.md has the tables):

- flat (exact) scans every vector: one query on one thread takes ~0.1 us a vector here (0.8 ms at 10k,
  1.9 ms at 20k, 4.8 ms at 50k, 11-13 ms at 100k, 196 ms at 1M). Up to FLAT_MAX_VECTORS (30k: ~3 ms) it is
  exact, builds instantly, needs no training and takes incremental adds, so it stays the choice there.
- ivf (IVF with SQ8 codes, nlist ~ 2*sqrt(n), nprobe 16) above: at 1M vectors recall@10 0.9945, p50 0.53 ms,
  p95 4.3 ms on the loaded machine (nprobe 32: the same recall, p95 5.1 ms; nprobe 8: the same recall, but real
  embeddings are less clustered than the synthetic ones, so 16 keeps a margin), 377 MB (flat: 1465 MB), built in 78 s (k-means
  on 40 points a list + adding). Chosen over HNSW, which at 1M needed efSearch 256 for recall 0.97
  (p50 1.05 ms), 1.7 GB and a 14-minute build on the two cores (M=32, efConstruction=64).
- hnsw stays available (make_dense_index(..., "hnsw")) with the parameters measured at 1M.
The synthetic vectors are clustered with a low intrinsic dimension, like text embeddings; on uniformly random
vectors (no structure at all) no index reaches useful recall at sub-linear cost (bench/README.md).
"""

from __future__ import annotations

import math

import faiss
import numpy as np

KINDS = ("flat", "hnsw", "ivf")

FLAT_MAX_VECTORS = 30_000

# The kind a build makes: "auto" chooses by size (choose_index_kind); set a kind here to force it (the tests do).
# It is recorded in the index manifest, and a changed kind rebuilds the ANN structures from the stored vectors.
DENSE_INDEX = "auto"

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 256

IVF_NPROBE = 16
IVF_TRAIN_PER_LIST = 40  # training points per inverted list (faiss warns below 39)
IVF_KMEANS_ITERATIONS = 10


def choose_index_kind(n_vectors: int) -> str:
    """'flat' up to FLAT_MAX_VECTORS (exact, ~3 ms a query there), 'ivf' (IVF-SQ8) above."""
    if n_vectors < 0:
        raise ValueError("n_vectors must be >= 0")
    return "flat" if n_vectors <= FLAT_MAX_VECTORS else "ivf"


def resolve_kind(setting: str, n_vectors: int) -> str:
    """The kind to build for `n_vectors` under `setting` (DENSE_INDEX): "auto" chooses by size, a kind is kept."""
    if setting == "auto":
        return choose_index_kind(n_vectors)
    if setting not in KINDS:
        raise ValueError(f"unknown dense index kind {setting!r} (expected auto or one of {', '.join(KINDS)})")
    return setting


def ivf_nlist(n_vectors: int) -> int:
    """Inverted lists for n vectors: ~2*sqrt(n) rounded to a power of two, and enough training points per list."""
    if n_vectors <= 0:
        return 1
    target = 2 ** round(math.log2(max(1.0, 2 * math.sqrt(n_vectors))))
    return max(1, min(target, n_vectors // IVF_TRAIN_PER_LIST or 1))


def make_dense_index(vectors: np.ndarray, kind: str, *, seed: int = 1234, trained: faiss.Index | None = None
                     ) -> faiss.Index:
    """An inner-product index of `kind` ('flat', 'hnsw' or 'ivf') holding `vectors` (n x d, normalised),
    with its search parameters set (they are saved with faiss.write_index). 'ivf' trains on (a sample of) these
    vectors, so build it from the whole corpus: later `add`s reuse those centroids, and an 'ivf' made from no
    vectors is untrained (choose_index_kind never picks it for so few). `trained`: an earlier build's index; when
    it is an IVF with the nlist these vectors get, its centroids and SQ8 ranges are reused instead of running
    k-means again (an update then only adds), and they are retrained once the corpus has grown to another nlist."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError("vectors must be a 2-d array (n x d)")
    n, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif kind == "ivf":
        nlist = ivf_nlist(n)
        reusable = _reusable_ivf(trained, nlist, dim)
        if reusable is not None:
            index = faiss.IndexIVFScalarQuantizer(faiss.clone_index(reusable.quantizer), dim, nlist,
                                                  faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
            index.sq.trained = reusable.sq.trained
            index.is_trained = True
            index.nprobe = min(IVF_NPROBE, nlist)
            if n:
                index.add(vectors)
            return index
        quantizer = faiss.IndexFlatIP(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = IVF_KMEANS_ITERATIONS
        index.cp.seed = seed
        index.cp.spherical = True
        index.cp.max_points_per_centroid = IVF_TRAIN_PER_LIST
        if n:
            rng = np.random.default_rng(seed)
            sample_size = min(n, nlist * IVF_TRAIN_PER_LIST)
            sample = vectors if sample_size == n else vectors[np.sort(rng.choice(n, sample_size, replace=False))]
            index.train(sample)
        index.nprobe = min(IVF_NPROBE, nlist)
    else:
        raise ValueError(f"unknown dense index kind {kind!r} (expected one of {', '.join(KINDS)})")
    if n:
        index.add(vectors)
    return index


def _reusable_ivf(index: faiss.Index | None, nlist: int, dim: int):
    """`index` as a trained IVF-SQ8 with `nlist` lists of `dim`-d vectors, or None."""
    ivf = faiss.try_extract_index_ivf(index) if index is not None else None
    if ivf is None:
        return None
    ivf = faiss.downcast_index(ivf)
    if not (isinstance(ivf, faiss.IndexIVFScalarQuantizer) and ivf.is_trained and ivf.nlist == nlist and ivf.d == dim
            and ivf.metric_type == faiss.METRIC_INNER_PRODUCT):
        return None
    return ivf


def index_params(index: faiss.Index) -> dict:
    """What to record in the manifest about a dense index: its kind and search parameters."""
    if isinstance(index, faiss.IndexHNSW):
        return {"kind": "hnsw", "M": index.hnsw.nb_neighbors(1), "efConstruction": index.hnsw.efConstruction,
                "efSearch": index.hnsw.efSearch}
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf = faiss.downcast_index(ivf)  # try_extract_index_ivf returns the IndexIVF base class
        codes = "SQ8" if isinstance(ivf, faiss.IndexIVFScalarQuantizer) else type(ivf).__name__
        return {"kind": "ivf", "nlist": ivf.nlist, "nprobe": ivf.nprobe, "codes": codes}
    return {"kind": "flat"}
