"""Sample-quality metrics computed from feature vectors: FID, KID, IS, precision/recall.

Every function takes plain arrays of features that some network produced
(Inception pool features, a classifier's softmax, an embedding ...) and
returns Python floats. They are pure numpy/scipy in float64, so they give the
same number whatever framework produced the features, and importing this
module does not load TensorFlow.

- :func:`frechet_distance` -- FID (Heusel et al. 2017).
- :func:`kernel_distance` -- KID (Binkowski et al. 2018).
- :func:`classifier_score` -- Inception Score (Salimans et al. 2016).
- :func:`precision_recall` -- improved precision and recall
  (Kynkaanniemi et al. 2019).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

__all__ = [
    "classifier_score",
    "feature_moments",
    "frechet_distance",
    "frechet_distance_from_moments",
    "kernel_distance",
    "nearest_distances",
    "precision_recall",
]

# Added to both covariances when sqrt(S_a S_b) cannot be computed accurately
# (near-singular covariances, e.g. fewer samples than feature dimensions).
# Same value as the reference FID implementations (TTUR, pytorch-fid).
_FID_EPS = 1e-6
# sqrtm of a product of two PSD matrices is real in exact arithmetic; an
# imaginary part larger than this fraction of the real part's largest entry
# means the result is not trustworthy.
_FID_IMAG_RTOL = 1e-3
# Relative residual ||X X - A||_F / ||A||_F above which sqrtm is retried with eps.
_SQRTM_RESIDUAL_RTOL = 1e-5
# Rows of the query set per block of pairwise distances: 1024 x 10k float64 is
# ~80 MB, so 10k x 10k feature sets never need the full N x N matrix.
_DEFAULT_CHUNK_ROWS = 1024


def _as_features(x, name: str, *, min_rows: int = 2) -> np.ndarray:
    """Return ``x`` as a finite float64 (N, D) array or raise ``ValueError``."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (num_samples, num_features); got shape {arr.shape}.")
    if arr.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples); got {arr.shape[0]}.")
    if arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least one feature column; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return arr


def _check_same_dim(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of features; got {a.shape[1]} and {b.shape[1]}."
        )


# --------------------------------------------------------------------------- FID


def feature_moments(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a set of feature vectors.

    ``mu = mean_i x_i`` and ``sigma = 1/(N-1) sum_i (x_i - mu)(x_i - mu)^T``.
    Compute these once for the real data and pass them to
    :func:`frechet_distance_from_moments` for every evaluation.

    Args:
        features: array of shape (N, D), N >= 2.

    Returns:
        ``(mu, sigma)`` in float64, of shapes (D,) and (D, D).
    """
    x = _as_features(features, "features")
    mu = x.mean(axis=0)
    # atleast_2d: np.cov returns a 0-d array when D == 1.
    sigma = np.atleast_2d(np.cov(x, rowvar=False))
    return mu, sigma


def _check_moments(mu, sigma, name: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1:
        raise ValueError(f"mu_{name} must be 1-D of shape (D,); got shape {mu.shape}.")
    if sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"sigma_{name} must have shape (D, D) = {(mu.shape[0],) * 2}; got {sigma.shape}.")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu_{name} / sigma_{name} contain NaN or infinite values.")
    return mu, sigma


def _sqrtm_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> np.ndarray | None:
    """``(sigma_a sigma_b)^{1/2}`` as a real matrix, or None if it is not accurate."""
    prod = sigma_a @ sigma_b
    with warnings.catch_warnings():
        # A singular product makes sqrtm warn; we judge the result ourselves below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(prod)
    if not np.all(np.isfinite(root)):
        return None
    real = np.real(root)
    if np.iscomplexobj(root):
        imag_max = np.max(np.abs(np.imag(root)))
        if imag_max > _FID_IMAG_RTOL * max(np.max(np.abs(real)), np.finfo(np.float64).tiny):
            return None
    prod_norm = np.linalg.norm(prod)
    if prod_norm > 0 and np.linalg.norm(real @ real - prod) > _SQRTM_RESIDUAL_RTOL * prod_norm:
        return None
    return real


def frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """Frechet distance between the Gaussians N(mu_a, sigma_a) and N(mu_b, sigma_b).

    ``d^2 = ||mu_a - mu_b||^2 + Tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^{1/2})``

    which is the squared 2-Wasserstein distance between the two Gaussians.
    If the matrix square root is inaccurate (non-finite, a large imaginary
    part or a large residual; this happens for near-singular covariances) it is
    recomputed with ``1e-6 * I`` added to both covariances, as the reference
    implementations do.

    Args:
        mu_a, mu_b: means of shape (D,).
        sigma_a, sigma_b: covariances of shape (D, D).

    Returns:
        The distance as a non-negative float; exactly 0.0 for identical moments.

    Raises:
        ValueError: on inconsistent shapes, non-finite values, or if the
            square root is still complex after regularisation.
    """
    mu_a, sigma_a = _check_moments(mu_a, sigma_a, "a")
    mu_b, sigma_b = _check_moments(mu_b, sigma_b, "b")
    if mu_a.shape != mu_b.shape:
        raise ValueError(f"The two sets of moments have different dimensions: {mu_a.shape[0]} and {mu_b.shape[0]}.")
    # Exact zero for identical statistics; sqrtm round-off would otherwise give ~1e-12.
    if np.array_equal(mu_a, mu_b) and np.array_equal(sigma_a, sigma_b):
        return 0.0

    diff = mu_a - mu_b
    covmean = _sqrtm_product(sigma_a, sigma_b)
    if covmean is None:
        offset = _FID_EPS * np.eye(sigma_a.shape[0])
        sigma_a, sigma_b = sigma_a + offset, sigma_b + offset
        covmean = _sqrtm_product(sigma_a, sigma_b)
        if covmean is None:
            raise ValueError(
                "Could not compute a real matrix square root of sigma_a @ sigma_b, even after adding "
                f"{_FID_EPS} * I to both covariances. Check the features for extreme values."
            )
    distance = float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.trace(covmean))
    # The true value is >= 0; round-off can push a near-zero distance slightly below.
    return max(distance, 0.0)


def frechet_distance(features_a, features_b) -> float:
    """Frechet (Inception) Distance between two sets of feature vectors.

    ``FID = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2})``

    with ``mu`` the feature means and ``S`` the unbiased covariances
    (see :func:`feature_moments`). Lower is better; 0 for identical sets.

    Args:
        features_a: array of shape (N_a, D), N_a >= 2.
        features_b: array of shape (N_b, D), N_b >= 2.

    Returns:
        The distance as a non-negative float; exactly 0.0 if the arrays are equal.

    Raises:
        ValueError: if an input is not 2-D, has fewer than 2 rows, contains
            non-finite values, or the two feature dimensions differ.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> real, fake = rng.normal(size=(500, 8)), rng.normal(1.0, size=(500, 8))
        >>> frechet_distance(real, fake) > frechet_distance(real[:250], real[250:])
        True
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    _check_same_dim(a, b, "features_a", "features_b")
    if a.shape == b.shape and np.array_equal(a, b):
        return 0.0
    return frechet_distance_from_moments(*feature_moments(a), *feature_moments(b))


# --------------------------------------------------------------------------- KID

# Kernel entries per block of rows when summing KID kernel matrices: 2**21
# float64 is 16 MB, so with the temporaries of the cube a 10k x 10k kernel
# matrix is summed in well under 100 MB.
_KID_CHUNK_ELEMENTS = 2**21


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cubic polynomial kernel ``k(x, y) = (x . y / D + 1)^3``; (n, D), (m, D) -> (n, m)."""
    base = x @ y.T
    base /= x.shape[1]
    base += 1.0
    cube = base * base
    cube *= base  # two multiplies; several times faster than ** 3 on large arrays
    return cube


def _kernel_row_sums(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row sums of ``K_xx`` without its diagonal, and row and column sums of ``K_xy``.

    The kernel matrices are never held whole: ``_KID_CHUNK_ELEMENTS`` entries at a time.
    Returns ``(r, c, d)`` with ``r_i = sum_{j != i} k(x_i, x_j)``, ``c_i = sum_j k(x_i, y_j)``
    and ``d_j = sum_i k(x_i, y_j)``.
    """
    n = x.shape[0]
    rows = max(1, _KID_CHUNK_ELEMENTS // max(n, y.shape[0]))
    r = np.empty(n)
    c = np.empty(n)
    d = np.zeros(y.shape[0])
    for start in range(0, n, rows):
        chunk = x[start : start + rows]
        r[start : start + rows] = _polynomial_kernel(chunk, x).sum(axis=1)
        k_xy = _polynomial_kernel(chunk, y)
        c[start : start + rows] = k_xy.sum(axis=1)
        d += k_xy.sum(axis=0)
    diag = np.einsum("ij,ij->i", x, x) / x.shape[1] + 1.0
    r -= diag * diag * diag
    return r, c, d


def _kid_blocks(a: np.ndarray, b: np.ndarray, pairs) -> tuple[float, float]:
    """Mean unbiased MMD^2 over block pairs and its delete-one jackknife standard error.

    ``pairs`` is a sequence of ``(idx_a, idx_b)`` index arrays (distinct indices
    within each array, at least 2 each). Returns ``(T, se)`` with ``T`` the mean of
    the pairs' unbiased MMD^2 and ``se`` the jackknife standard error of ``T``
    (pairs held fixed, one point of ``a`` or ``b`` deleted at a time; see
    :func:`kernel_distance` for the closed form). ``se`` is NaN if a block has
    fewer than 3 points of either set (deleting one would leave no pair).
    """
    num_pairs = len(pairs)
    infl_a = np.zeros(a.shape[0])  # T_(-k) - T for deleting a[k]
    infl_b = np.zeros(b.shape[0])
    total = 0.0
    jackknife_ok = True
    for idx_a, idx_b in pairs:
        x, y = a[idx_a], b[idx_b]
        n, m = x.shape[0], y.shape[0]
        r, c, d = _kernel_row_sums(x, y)
        s = _kernel_row_sums(y, y[:0])[0]  # K_yy row sums; no cross term needed
        sum_xx, sum_yy, sum_xy = r.sum(), s.sum(), c.sum()
        total += sum_xx / (n * (n - 1)) + sum_yy / (m * (m - 1)) - 2.0 * sum_xy / (n * m)
        if n < 3 or m < 3:
            jackknife_ok = False
            continue
        # U_(-k) - U = -2/(n-1) (g_k - mean g), g_k = r_k/(n-2) - c_k/m; the same for y.
        g = r / (n - 2) - c / m
        h = s / (m - 2) - d / n
        infl_a[idx_a] -= 2.0 / ((n - 1) * num_pairs) * (g - g.mean())
        infl_b[idx_b] -= 2.0 / ((m - 1) * num_pairs) * (h - h.mean())
    mean = total / num_pairs
    if not jackknife_ok:
        return float(mean), float("nan")
    n_a, n_b = a.shape[0], b.shape[0]
    # The influences sum to 0 over each set, so they are already centred.
    var = (n_a - 1) / n_a * np.dot(infl_a, infl_a) + (n_b - 1) / n_b * np.dot(infl_b, infl_b)
    return float(mean), float(np.sqrt(var))


def _kid_partitions(n_a: int, n_b: int, *, num_subsets: int, subset_size: int, seed: int) -> list:
    """The ``(idx_a, idx_b)`` block pairs :func:`kernel_distance` averages over."""
    if max(n_a, n_b) <= subset_size:
        return [(np.arange(n_a), np.arange(n_b))]
    min_block = 3 if subset_size >= 3 else 2
    num_blocks = -(-max(n_a, n_b) // subset_size)
    num_blocks = max(1, min(num_blocks, min(n_a, n_b) // min_block))
    num_partitions = max(1, -(-num_subsets // num_blocks))
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(num_partitions):
        # Independent permutations of a and b, so that KID(x, x) pairs independent subsets.
        blocks_a = np.array_split(rng.permutation(n_a), num_blocks)
        blocks_b = np.array_split(rng.permutation(n_b), num_blocks)
        pairs.extend(zip(blocks_a, blocks_b, strict=True))
    return pairs


def kernel_distance(
    features_a,
    features_b,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel (Inception) Distance: unbiased MMD^2 with a cubic polynomial kernel.

    With ``k(x, y) = (x . y / D + 1)^3``, the unbiased MMD^2 of samples
    ``{x_i}`` (size n) and ``{y_j}`` (size m) is

    ``U = sum_{i != j} k(x_i, x_j) / (n(n-1)) + sum_{i != j} k(y_i, y_j) / (m(m-1))
    - 2 sum_{i, j} k(x_i, y_j) / (nm)``.

    **Estimate.** If both sets have at most ``subset_size`` rows, the result is
    ``U`` of the full sets (``num_subsets`` and ``seed`` are then unused). Otherwise
    each set is randomly permuted and split into ``B = ceil(max(N_a, N_b) / subset_size)``
    disjoint blocks of near-equal size (fewer if the smaller set cannot give every
    block 3 points), block ``i`` of ``a`` is paired with block ``i`` of ``b``, and this
    is repeated for ``R = ceil(num_subsets / B)`` independent partitions; the result
    is the mean ``T`` of ``U`` over the ``R * B`` block pairs (about ``num_subsets *
    subset_size^2`` kernel evaluations, as with the usual 100 subsets of 1,000).
    Every block ``U`` is unbiased, so ``T`` is too: it can be slightly negative
    when the two distributions are equal.

    **Standard error.** The delete-one jackknife of the returned estimate over
    both samples, with the blocks held fixed:

    ``se^2 = (N_a-1)/N_a sum_k (T_(-a_k) - T_(-a.))^2 + (N_b-1)/N_b sum_l (T_(-b_l) - T_(-b.))^2``

    where ``T_(-a_k)`` is the estimate with row ``k`` of ``a`` deleted. It needs no
    recomputation: deleting ``x_k`` from a block of n x's and m y's changes that
    block's ``U`` by ``-2/(n-1) (g_k - mean(g))`` with ``g_k = r_k/(n-2) - c_k/m``,
    ``r_k = sum_{j != k} k(x_k, x_j)`` and ``c_k = sum_j k(x_k, y_j)`` (kernel row
    sums, computed in chunks, so memory stays O(N) besides a ~16 MB working block),
    and symmetrically for ``y``. Unlike the spread of overlapping subsets, this
    measures the uncertainty due to the finite samples themselves: it is positive
    whenever the sets are not degenerate, shrinks like ``1/sqrt(N)`` when the
    distributions differ (``1/N`` when they are equal), and, like any jackknife
    of a U-statistic, errs on the conservative side (up to ~sqrt(2) too large when
    the distributions are equal).

    Args:
        features_a: array of shape (N_a, D), N_a >= 2.
        features_b: array of shape (N_b, D), N_b >= 2.
        num_subsets: how many block pairs to average over when a set has more
            than ``subset_size`` rows (rounded up to whole partitions).
        subset_size: largest block size per set; sets of at most this many rows
            are used whole.
        seed: seed of ``np.random.default_rng`` that draws the partitions; the
            result is a deterministic function of the inputs and the seed.

    Returns:
        ``(estimate, stderr)``: the estimate above and its jackknife standard
        error (NaN if a block holds fewer than 3 rows of either set).

    Raises:
        ValueError: on bad shapes, non-finite values, ``num_subsets < 1`` or
            ``subset_size < 2``.
    """
    a = _as_features(features_a, "features_a")
    b = _as_features(features_b, "features_b")
    _check_same_dim(a, b, "features_a", "features_b")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1; got {num_subsets}.")
    if subset_size < 2:
        raise ValueError(f"subset_size must be >= 2 (the unbiased estimate divides by m(m-1)); got {subset_size}.")
    pairs = _kid_partitions(a.shape[0], b.shape[0], num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return _kid_blocks(a, b, pairs)


# --------------------------------------------------------------------------- IS


def classifier_score(probs, *, num_splits: int = 10, eps: float = 1e-12) -> tuple[float, float]:
    """Inception Score from a classifier's predicted class probabilities.

    For each of ``num_splits`` consecutive splits of the rows:

    ``IS = exp( mean_x KL(p(y|x) || p(y)) )``, with ``p(y) = mean_x p(y|x)`` over the split
    and ``KL(p || q) = sum_y p_y (log p_y - log q_y)``,

    then the mean and (population) standard deviation over the splits, as in
    the original implementation. The score lies in [1, K]: K for confident
    predictions spread evenly over K classes, 1 when every prediction is the same.

    Args:
        probs: array of shape (N, K) of probabilities (softmax outputs, not
            logits); every row must sum to 1 within 1e-3.
        num_splits: number of splits; each must hold at least one row.
        eps: added inside the logarithms so that ``0 * log(0)`` contributes 0.

    Returns:
        ``(mean, std)`` of the score over splits.

    Raises:
        ValueError: if ``probs`` is not 2-D, has negative entries or rows that do
            not sum to 1, or has fewer rows than ``num_splits``.
    """
    p = _as_features(probs, "probs", min_rows=1)
    if num_splits < 1:
        raise ValueError(f"num_splits must be >= 1; got {num_splits}.")
    if p.shape[0] < num_splits:
        raise ValueError(f"probs has {p.shape[0]} rows, fewer than num_splits={num_splits}.")
    if np.any(p < 0):
        raise ValueError("probs has negative entries; pass softmax probabilities, not logits.")
    row_sums = p.sum(axis=1)
    if not np.allclose(row_sums, 1.0, rtol=0.0, atol=1e-3):
        worst = row_sums[np.argmax(np.abs(row_sums - 1.0))]
        raise ValueError(
            f"Every row of probs must sum to 1 (softmax outputs, not logits); one row sums to {worst:.6g}."
        )

    scores = []
    for part in np.array_split(p, num_splits, axis=0):
        p_y = part.mean(axis=0, keepdims=True)  # (1, K) marginal over the split
        kl = np.sum(part * (np.log(part + eps) - np.log(p_y + eps)), axis=1)  # (rows,)
        scores.append(np.exp(kl.mean()))
    scores = np.asarray(scores)
    return float(scores.mean()), float(scores.std())


# --------------------------------------------------------------------------- precision / recall


def _squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, D), (m, D) -> (n, m) via ||x||^2 + ||y||^2 - 2 x.y."""
    x_sq = np.einsum("ij,ij->i", x, x)[:, None]
    y_sq = np.einsum("ij,ij->i", y, y)[None, :]
    d2 = x_sq + y_sq - 2.0 * (x @ y.T)
    # The expansion loses ~eps * (||x||^2 + ||y||^2) to cancellation; snap values
    # inside that error to 0 so that duplicate points are exactly at distance 0
    # (a duplicated point must lie inside the zero-radius ball of its copy).
    d2[d2 <= 1e-12 * (x_sq + y_sq)] = 0.0
    return d2


def _knn_radii_squared(x: np.ndarray, k: int, chunk_rows: int) -> np.ndarray:
    """Squared distance from each row of x to its k-th nearest other row; (N, D) -> (N,)."""
    n = x.shape[0]
    radii = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk_rows):
        stop = min(start + chunk_rows, n)
        d2 = _squared_distances(x[start:stop], x)  # (chunk, N)
        # Exclude each point itself (but not its duplicates).
        rows = np.arange(stop - start)
        d2[rows, rows + start] = np.inf
        radii[start:stop] = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return radii


def _fraction_inside_balls(queries: np.ndarray, centres: np.ndarray, radii_sq: np.ndarray, chunk_rows: int) -> float:
    """Fraction of query rows with ||q - c_j|| <= radius_j for at least one centre j."""
    inside = np.empty(queries.shape[0], dtype=bool)
    for start in range(0, queries.shape[0], chunk_rows):
        stop = min(start + chunk_rows, queries.shape[0])
        d2 = _squared_distances(queries[start:stop], centres)  # (chunk, num_centres)
        inside[start:stop] = np.any(d2 <= radii_sq[None, :], axis=1)
    return float(inside.mean())


def precision_recall(
    real_features,
    fake_features,
    *,
    k: int = 3,
    chunk_size: int = _DEFAULT_CHUNK_ROWS,
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) with k-NN balls.

    Each set is modelled as the union of balls ``B(x, r_k(x))`` where ``r_k(x)``
    is the distance from ``x`` to its k-th nearest neighbour in the same set
    (excluding ``x`` itself). Then

    ``precision = mean_{f in fake} 1[exists r in real: ||f - r|| <= r_k(r)]``
    (how many samples look real) and

    ``recall = mean_{r in real} 1[exists f in fake: ||r - f|| <= r_k(f)]``
    (how much of the real distribution the samples cover).

    Distances are computed in blocks of ``chunk_size`` rows, so memory is
    O(chunk_size * N) rather than O(N^2).

    Args:
        real_features: array of shape (N_r, D), N_r > k.
        fake_features: array of shape (N_f, D), N_f > k.
        k: which nearest neighbour sets the ball radius.
        chunk_size: rows per block of pairwise distances.

    Returns:
        ``(precision, recall)``, both in [0, 1].

    Raises:
        ValueError: on bad shapes, non-finite values, ``k < 1``, a set with
            ``k`` or fewer rows, or ``chunk_size < 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}.")
    real = _as_features(real_features, "real_features", min_rows=k + 1)
    fake = _as_features(fake_features, "fake_features", min_rows=k + 1)
    _check_same_dim(real, fake, "real_features", "fake_features")

    # Distances are translation invariant; centring shrinks the norms and with
    # them the cancellation error of the ||x||^2 + ||y||^2 - 2 x.y expansion.
    centre = np.concatenate([real, fake]).mean(axis=0)
    real, fake = real - centre, fake - centre

    real_radii = _knn_radii_squared(real, k, chunk_size)
    fake_radii = _knn_radii_squared(fake, k, chunk_size)
    precision = _fraction_inside_balls(fake, real, real_radii, chunk_size)
    recall = _fraction_inside_balls(real, fake, fake_radii, chunk_size)
    return precision, recall


def nearest_distances(queries, reference, *, chunk_rows: int = 1000) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row; (n, D), (m, D) -> (n,).

    The memorisation check: samples much closer to the training set than
    held-out real images are would be copies of training images.
    """
    q = _as_features(queries, "queries", min_rows=1)
    r = _as_features(reference, "reference", min_rows=1)
    _check_same_dim(q, r, "queries", "reference")
    out = np.empty(q.shape[0], dtype=np.float64)
    for start in range(0, q.shape[0], chunk_rows):
        stop = min(start + chunk_rows, q.shape[0])
        out[start:stop] = np.sqrt(np.maximum(_squared_distances(q[start:stop], r).min(axis=1), 0.0))
    return out
