"""FID, KID, classifier score and precision/recall against closed forms and brute force."""

import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest
import scipy.linalg

from aigc_tf.metrics import (
    classifier_score,
    distances,
    feature_moments,
    frechet_distance,
    frechet_distance_from_moments,
    kernel_distance,
    precision_recall,
)


def _random_cov(rng, d, scale=1.0):
    """A well-conditioned random SPD matrix."""
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def _frechet_reference(mu_a, sigma_a, mu_b, sigma_b):
    """FD via symmetric eigendecompositions instead of sqrtm of a non-symmetric product.

    Tr((S_a S_b)^{1/2}) = Tr((S_a^{1/2} S_b S_a^{1/2})^{1/2}) = sum_i sqrt(lambda_i), where
    lambda_i are the eigenvalues of the symmetric PSD matrix S_a^{1/2} S_b S_a^{1/2}.
    """
    w, v = np.linalg.eigh(sigma_a)
    root_a = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    lam = np.linalg.eigvalsh(root_a @ sigma_b @ root_a)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2.0 * np.sqrt(np.clip(lam, 0.0, None)).sum())


def _structured_features(rng, n, d=8):
    """'Real' features: a 3-D latent through a fixed linear map plus a little noise."""
    w = np.random.default_rng(123).normal(size=(3, d))  # same map for every call
    return rng.normal(size=(n, 3)) @ w + 0.1 * rng.normal(size=(n, d)) + 2.0


# --------------------------------------------------------------------------- FID


def test_frechet_from_moments_matches_diagonal_closed_form():
    # For diagonal covariances (S_a S_b)^{1/2} = diag(sqrt(s_a s_b)), so
    # FD = ||mu_a - mu_b||^2 + sum (sqrt(s_a) - sqrt(s_b))^2.
    mu_a, mu_b = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s_a, s_b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(s_a) - np.sqrt(s_b)) ** 2)
    assert expected == pytest.approx(1 + 0 + 6.25 + 4 + 1 + 0)  # the numbers by hand
    got = frechet_distance_from_moments(mu_a, np.diag(s_a), mu_b, np.diag(s_b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_frechet_from_moments_matches_eigen_reference_for_full_covariances():
    rng = np.random.default_rng(0)
    for d in (1, 5, 32):
        mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
        s_a, s_b = _random_cov(rng, d), _random_cov(rng, d, scale=3.0)
        got = frechet_distance_from_moments(mu_a, s_a, mu_b, s_b)
        assert got == pytest.approx(_frechet_reference(mu_a, s_a, mu_b, s_b), rel=1e-9)


def test_frechet_of_gaussian_samples_approaches_true_parameters():
    rng = np.random.default_rng(1)
    d, n = 4, 20000
    mu1, mu2 = np.array([0.0, 1.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.5, -1.0])
    s1, s2 = _random_cov(rng, d), _random_cov(rng, d, scale=2.0)
    x1 = rng.multivariate_normal(mu1, s1, size=n)
    x2 = rng.multivariate_normal(mu2, s2, size=n)
    true_fd = frechet_distance_from_moments(mu1, s1, mu2, s2)
    assert true_fd == pytest.approx(_frechet_reference(mu1, s1, mu2, s2), rel=1e-9)
    # Sampling error of the moments with n = 20000 is ~1%; 5% leaves room without
    # hiding e.g. a biased covariance or a missing factor 2.
    assert frechet_distance(x1, x2) == pytest.approx(true_fd, rel=0.05)


@pytest.mark.parametrize("n,d", [(300, 6), (50, 64), (8, 20)])
def test_frechet_distance_matches_eigen_reference_on_samples(n, d):
    # Includes D > N, where both covariances are singular.
    rng = np.random.default_rng(n + d)
    a = rng.standard_t(df=5, size=(n, d))  # heavy-tailed, not Gaussian
    b = rng.normal(size=(n, d)) @ _random_cov(rng, d) + 0.3
    expected = _frechet_reference(np.mean(a, 0), np.cov(a, rowvar=False), np.mean(b, 0), np.cov(b, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_feature_moments_are_mean_and_unbiased_covariance():
    x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 1.0]])
    mu, sigma = feature_moments(x)
    np.testing.assert_allclose(mu, [3.0, 3.0])
    centred = x - mu
    np.testing.assert_allclose(sigma, centred.T @ centred / 2)  # divide by N - 1
    mu1, sigma1 = feature_moments(x[:, :1])
    assert mu1.shape == (1,) and sigma1.shape == (1, 1)


def test_frechet_of_identical_sets_is_exactly_zero():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 16))
    assert frechet_distance(x, x) == 0.0
    assert frechet_distance(x, x.copy()) == 0.0
    assert frechet_distance_from_moments(*feature_moments(x), *feature_moments(x)) == 0.0
    # Near-identical sets give a small non-negative number, not a negative one.
    assert 0.0 <= frechet_distance(x, x + 1e-9) < 1e-12


def test_frechet_and_kid_rank_real_collapsed_and_noise_sets():
    rng = np.random.default_rng(3)
    real = _structured_features(rng, 1200)
    real_a, real_b = real[:600], real[600:]
    shifted = real_b + 1.0
    collapsed = np.tile(real_b[:1], (600, 1)) + 1e-3 * rng.normal(size=(600, 8))
    noise = rng.normal(size=(600, 8))

    fd_real = frechet_distance(real_a, real_b)
    fd_shift, fd_collapsed, fd_noise = (frechet_distance(real_a, x) for x in (shifted, collapsed, noise))
    assert fd_real < 0.1 * fd_shift
    assert fd_real < 0.01 * min(fd_collapsed, fd_noise)

    def kid(x):
        return kernel_distance(real_a, x, num_subsets=10, subset_size=300, seed=0)[0]

    kid_real = kid(real_b)
    assert abs(kid_real) < 0.1 * kid(shifted)
    assert abs(kid_real) < 0.01 * min(kid(collapsed), kid(noise))


def test_frechet_is_finite_for_near_singular_covariances():
    rng = np.random.default_rng(4)
    base_a, base_b = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 0.2
    # A duplicated column and a constant column make both covariances singular.
    a = np.c_[base_a, base_a[:, 0], np.ones(40)]
    b = np.c_[base_b, base_b[:, 0], np.ones(40)]
    fd = frechet_distance(a, b)
    assert np.isfinite(fd) and fd >= 0.0
    expected = _frechet_reference(*feature_moments(a), *feature_moments(b))
    assert fd == pytest.approx(expected, rel=1e-5)
    # Far more dimensions than samples, plus a set with zero covariance.
    wide_a, wide_b = rng.normal(size=(10, 200)), rng.normal(size=(12, 200))
    for other in (wide_b, np.tile(wide_b[:1], (12, 1))):
        fd = frechet_distance(wide_a, other)
        assert np.isfinite(fd) and fd >= 0.0


def test_frechet_retries_with_eps_when_sqrtm_fails(monkeypatch):
    rng = np.random.default_rng(5)
    mu_a, mu_b = rng.normal(size=4), rng.normal(size=4)
    s_a, s_b = _random_cov(rng, 4), _random_cov(rng, 4)
    real_sqrtm = scipy.linalg.sqrtm
    calls = []

    def flaky_sqrtm(m):
        calls.append(m)
        return np.full_like(m, np.nan) if len(calls) == 1 else real_sqrtm(m)

    monkeypatch.setattr(distances.scipy.linalg, "sqrtm", flaky_sqrtm)
    got = frechet_distance_from_moments(mu_a, s_a, mu_b, s_b)
    assert len(calls) == 2
    eye = 1e-6 * np.eye(4)
    np.testing.assert_allclose(calls[1], (s_a + eye) @ (s_b + eye))
    assert got == pytest.approx(_frechet_reference(mu_a, s_a + eye, mu_b, s_b + eye), rel=1e-10)


def test_frechet_raises_when_sqrt_stays_complex(monkeypatch):
    real_sqrtm = scipy.linalg.sqrtm

    def complex_sqrtm(m):
        return real_sqrtm(m) + 0.5j * np.ones_like(m)

    monkeypatch.setattr(distances.scipy.linalg, "sqrtm", complex_sqrtm)
    with pytest.raises(ValueError, match="square root"):
        frechet_distance_from_moments(np.zeros(3), np.eye(3), np.ones(3), 2 * np.eye(3))


# --------------------------------------------------------------------------- KID


def _kid_brute_force(x, y):
    """Unbiased MMD^2 with k(u, v) = (u.v / D + 1)^3, written as explicit sums."""
    m, d = x.shape

    def k(u, v):
        return (float(np.dot(u, v)) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2.0 * xy / m**2


def test_kid_matches_brute_force_without_subsampling():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3)) + 0.5
    # subset_size >= N: each "subset" is a permutation of the full set, and the
    # estimate is invariant to permutations, so there is no sampling randomness.
    mean, stderr = kernel_distance(x, y, num_subsets=1, subset_size=100, seed=0)
    assert mean == pytest.approx(_kid_brute_force(x, y), rel=1e-12)
    # The error is the delete-one jackknife (formerly NaN for a single subset).
    assert stderr == pytest.approx(_kid_jackknife_brute_force(x, y, [(np.arange(7), np.arange(7))])[1], rel=1e-10)


def test_kid_of_identical_sets_matches_its_finite_sample_offset():
    # KID(x, x) is not exactly 0: the two "samples" share points, so mean(K_xy)
    # includes the large diagonal k(x_i, x_i) that the unbiased within-set terms
    # leave out. Averaging over subset draws (or using the full set) gives exactly
    # 2/n * (mean off-diagonal k - mean diagonal k): O(1/n) against an O(1)
    # distance for a real shift, which is the scale this test checks against.
    rng = np.random.default_rng(7)
    n = 400
    x = rng.normal(size=(n, 8))
    kern = (x @ x.T / 8 + 1.0) ** 3
    offset = 2.0 / n * ((kern.sum() - np.trace(kern)) / (n * (n - 1)) - np.mean(np.diag(kern)))

    full, _ = kernel_distance(x, x, num_subsets=1, subset_size=n)
    assert full == pytest.approx(offset, rel=1e-10)

    mean, stderr = kernel_distance(x, x, num_subsets=40, subset_size=200, seed=1)
    assert abs(mean - offset) < 4 * stderr
    shifted, _ = kernel_distance(x, x + 0.5, num_subsets=10, subset_size=200, seed=1)
    assert abs(mean) < 0.05 * shifted


def test_kid_halves_are_close_and_shift_is_far():
    rng = np.random.default_rng(8)
    x = rng.normal(size=(800, 8))
    same, same_err = kernel_distance(x[:400], x[400:], num_subsets=20, subset_size=200)
    far, _ = kernel_distance(x[:400], x[400:] + 0.5, num_subsets=20, subset_size=200)
    assert abs(same) < 0.05 * far
    assert far > 10 * same_err


def test_kid_stderr_shrinks_with_more_subsets():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.2
    _, err_few = kernel_distance(x, y, num_subsets=10, subset_size=50, seed=0)
    _, err_many = kernel_distance(x, y, num_subsets=160, subset_size=50, seed=0)
    assert 0.0 < err_many < err_few
    # Formerly stderr ~ 1/sqrt(num_subsets) (16x more subsets, ~4x smaller), which
    # ignored that the subsets share the same 300 points. Reusing the data more often
    # cannot beat the uncertainty of the data themselves: the full-sample error.
    _, err_full = kernel_distance(x, y, subset_size=300)
    assert 0.8 * err_full < err_many < 1.25 * err_full


def test_kid_is_deterministic_for_a_seed():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(120, 5)), rng.normal(size=(90, 5))
    first = kernel_distance(x, y, num_subsets=5, subset_size=40, seed=3)
    assert kernel_distance(x, y, num_subsets=5, subset_size=40, seed=3) == first
    assert kernel_distance(x, y, num_subsets=5, subset_size=40, seed=4)[0] != first[0]


def _mmd2_reference(x, y):
    """Unbiased MMD^2 of samples of any sizes n, m from the full kernel matrices."""
    d = x.shape[1]
    n, m = len(x), len(y)
    k_xx, k_yy, k_xy = ((u @ v.T / d + 1.0) ** 3 for u, v in ((x, x), (y, y), (x, y)))
    return (
        (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
        + (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        - 2.0 * k_xy.sum() / (n * m)
    )


def _kid_jackknife_brute_force(a, b, pairs):
    """Mean MMD^2 over block pairs and its delete-one jackknife, recomputed for every deletion."""

    def estimate(a, b, pairs):
        return np.mean([_mmd2_reference(a[ia], b[ib]) for ia, ib in pairs])

    def without(idx, k):
        # Indices into the array with row k deleted.
        idx = idx[idx != k]
        return idx - (idx > k)

    var = 0.0
    for side, n in ((0, len(a)), (1, len(b))):
        reps = []
        for k in range(n):
            if side == 0:
                reps.append(estimate(np.delete(a, k, axis=0), b, [(without(ia, k), ib) for ia, ib in pairs]))
            else:
                reps.append(estimate(a, np.delete(b, k, axis=0), [(ia, without(ib, k)) for ia, ib in pairs]))
        reps = np.asarray(reps)
        var += (n - 1) / n * np.sum((reps - reps.mean()) ** 2)
    return estimate(a, b, pairs), np.sqrt(var)


@pytest.mark.parametrize(
    "num_subsets,subset_size",
    [(100, 1000), (6, 10), (1, 12)],
    ids=["full-sample", "blocks", "one-partition"],
)
def test_kid_jackknife_matches_brute_force_delete_one(num_subsets, subset_size):
    rng = np.random.default_rng(16)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(25, 5)) + 0.3
    pairs = distances._kid_partitions(30, 25, num_subsets=num_subsets, subset_size=subset_size, seed=2)
    expected_mean, expected_se = _kid_jackknife_brute_force(a, b, pairs)
    mean, stderr = kernel_distance(a, b, num_subsets=num_subsets, subset_size=subset_size, seed=2)
    assert mean == pytest.approx(expected_mean, rel=1e-10, abs=1e-12)
    assert stderr == pytest.approx(expected_se, rel=1e-10)
    assert stderr > 0.0
    if subset_size >= 30:
        assert len(pairs) == 1 and mean == pytest.approx(_mmd2_reference(a, b), rel=1e-10)


def test_kid_partitions_use_every_point_equally_often():
    pairs = distances._kid_partitions(1000, 450, num_subsets=10, subset_size=300, seed=0)
    # ceil(1000 / 300) = 4 blocks per partition, ceil(10 / 4) = 3 partitions.
    assert len(pairs) == 12
    counts_a = np.bincount(np.concatenate([ia for ia, _ in pairs]), minlength=1000)
    counts_b = np.bincount(np.concatenate([ib for _, ib in pairs]), minlength=450)
    assert np.all(counts_a == 3) and np.all(counts_b == 3)
    assert all(len(ia) <= 300 and len(ib) <= 300 for ia, ib in pairs)
    # A small set caps the number of blocks so that each keeps 3 points for the jackknife.
    small = distances._kid_partitions(7, 100, num_subsets=4, subset_size=10, seed=0)
    assert all(len(ia) >= 3 for ia, _ in small)


def test_kid_stderr_is_positive_and_shrinks_with_n():
    rng = np.random.default_rng(17)
    errors = {}
    for n in (200, 800):
        x, y = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
        errors[n] = kernel_distance(x, y)[1], kernel_distance(x, y + 0.3)[1]
    (same_200, shift_200), (same_800, shift_800) = errors[200], errors[800]
    assert min(same_200, same_800, shift_200, shift_800) > 0.0
    # Different distributions: the error is O(1/sqrt(N)), so 4x the data halves it.
    assert 0.3 < shift_800 / shift_200 < 0.75
    # Equal distributions: MMD^2 is a degenerate U-statistic and the error is O(1/N).
    assert 0.1 < same_800 / same_200 < 0.45


@pytest.mark.parametrize(
    "shift,kwargs",
    [
        (0.3, {}),
        (0.3, {"num_subsets": 16, "subset_size": 150}),
        (0.0, {"num_subsets": 16, "subset_size": 150}),
    ],
    ids=["shift-full-sample", "shift-blocks", "equal-blocks"],
)
def test_kid_stderr_is_calibrated_over_independent_draws(shift, kwargs):
    n = 600 if kwargs else 200
    rng = np.random.default_rng(18)
    estimates, errors = [], []
    for draw in range(30):
        x, y = rng.normal(size=(n, 8)), rng.normal(size=(n, 8)) + shift
        estimate, stderr = kernel_distance(x, y, seed=draw, **kwargs)
        estimates.append(estimate)
        errors.append(stderr)
    ratio = np.std(estimates, ddof=1) / np.median(errors)
    assert 0.5 < ratio < 2.0
    if shift:
        assert np.mean(estimates) > 3 * np.median(errors)  # a real, non-degenerate distance


def test_kid_stderr_is_positive_for_digits_sized_sets():
    # The digits evaluation: 898 vs 898 features with the default 100 subsets of up to
    # 1,000. Formerly every subset was the whole set, so the reported error was 0.
    rng = np.random.default_rng(19)
    real, fake = rng.normal(size=(898, 64)), rng.normal(size=(898, 64)) + 0.1
    mean, stderr = kernel_distance(fake, real)
    assert mean == pytest.approx(_mmd2_reference(fake, real), rel=1e-10)
    assert np.isfinite(stderr) and stderr > 0.0
    assert kernel_distance(fake, real, num_subsets=3, seed=5) == (mean, stderr)  # no subsampling left
    mean_rr, stderr_rr = kernel_distance(real[:449], real[449:])
    assert stderr_rr > 0.0 and abs(mean_rr) < 4 * stderr_rr


def test_kid_chunked_kernel_sums_match_and_bound_memory(monkeypatch):
    import tracemalloc

    rng = np.random.default_rng(20)
    x, y = rng.normal(size=(90, 6)), rng.normal(size=(70, 6)) + 0.2
    whole = kernel_distance(x, y)
    blocks = kernel_distance(x, y, num_subsets=8, subset_size=40)
    monkeypatch.setattr(distances, "_KID_CHUNK_ELEMENTS", 64)  # one row at a time
    assert kernel_distance(x, y) == pytest.approx(whole, rel=1e-12)
    assert kernel_distance(x, y, num_subsets=8, subset_size=40) == pytest.approx(blocks, rel=1e-12)
    monkeypatch.undo()
    # 4,000 x 4,000 kernel matrices would be 128 MB each; the chunked sums need far less.
    a, b = rng.normal(size=(4000, 64)), rng.normal(size=(4000, 64))
    tracemalloc.start()
    try:
        _, stderr = kernel_distance(a, b, subset_size=4000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert stderr > 0.0
    assert peak < 100e6


def test_kid_stderr_is_nan_when_a_deletion_leaves_no_pair():
    rng = np.random.default_rng(21)
    x, y = rng.normal(size=(2, 3)), rng.normal(size=(5, 3))
    mean, stderr = kernel_distance(x, y)
    assert mean == pytest.approx(_mmd2_reference(x, y), rel=1e-12)
    assert np.isnan(stderr)


# --------------------------------------------------------------------------- classifier score


def test_classifier_score_of_confident_balanced_predictions_is_k():
    k = 10
    probs = np.eye(k)[np.arange(1000) % k]  # every split of 100 rows holds each class 10 times
    mean, std = classifier_score(probs, num_splits=10)
    assert mean == pytest.approx(k, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)


def test_classifier_score_is_one_without_diversity_or_confidence():
    rng = np.random.default_rng(11)
    identical = np.tile(rng.dirichlet(np.ones(7)), (50, 1))
    uniform = np.full((50, 7), 1.0 / 7)
    for probs in (identical, uniform):
        mean, std = classifier_score(probs, num_splits=5)
        assert mean == pytest.approx(1.0, abs=1e-9)
        assert std == pytest.approx(0.0, abs=1e-9)


def test_classifier_score_matches_hand_computed_value():
    probs = np.array([[1.0, 0.0], [0.5, 0.5]])
    # p(y) = (0.75, 0.25); KL(row 1) = log(1/0.75); KL(row 2) = 0.5 log(0.5/0.75) + 0.5 log(0.5/0.25).
    kl = [np.log(1 / 0.75), 0.5 * np.log(0.5 / 0.75) + 0.5 * np.log(0.5 / 0.25)]
    mean, std = classifier_score(probs, num_splits=1)
    assert mean == pytest.approx(np.exp(np.mean(kl)), rel=1e-9)
    assert std == 0.0


def test_classifier_score_splits_consecutive_rows():
    k = 4
    diverse = np.eye(k)[np.arange(40) % k]  # score k
    collapsed = np.tile(np.eye(k)[0], (40, 1))  # score 1
    mean, std = classifier_score(np.concatenate([diverse, collapsed]), num_splits=2)
    assert mean == pytest.approx((k + 1) / 2, rel=1e-9)
    assert std == pytest.approx((k - 1) / 2, rel=1e-9)  # population std over the 2 splits


@pytest.mark.parametrize(
    "probs,num_splits,match",
    [
        (np.array([[2.0, -1.0], [0.5, 0.5]]), 1, "negative"),  # logits, not probabilities
        (np.array([[0.7, 0.7], [0.5, 0.5]]), 1, "sum to 1"),
        (np.full((3, 2), 0.5), 5, "fewer than num_splits"),
        (np.full(4, 0.25), 1, "2-D"),
    ],
)
def test_classifier_score_rejects_bad_probabilities(probs, num_splits, match):
    with pytest.raises(ValueError, match=match):
        classifier_score(probs, num_splits=num_splits)


# --------------------------------------------------------------------------- precision / recall


def _precision_recall_brute_force(real, fake, k):
    def radii(x):
        # Distance to the k-th nearest *other* point.
        others = [[np.linalg.norm(p - q) for j, q in enumerate(x) if j != i] for i, p in enumerate(x)]
        return np.array([sorted(row)[k - 1] for row in others])

    def coverage(queries, centres, r):
        return np.mean([any(np.linalg.norm(q - c) <= r[j] for j, c in enumerate(centres)) for q in queries])

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_precision_recall_matches_brute_force(chunk_size):
    rng = np.random.default_rng(12)
    real = rng.normal(size=(15, 3))
    fake = rng.normal(size=(11, 3)) + 1.0
    expected = _precision_recall_brute_force(real, fake, k=3)
    assert 0.0 < expected[0] < 1.0 and 0.0 < expected[1] < 1.0  # the example is not trivial
    got = precision_recall(real, fake, k=3, chunk_size=chunk_size)
    assert got == pytest.approx(expected, abs=1e-12)


def test_precision_recall_identical_far_and_collapsed():
    rng = np.random.default_rng(13)
    real = rng.normal(size=(300, 8))
    assert precision_recall(real, real) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    # Every sample is one real point: all look real, but only that point is covered
    # (the fake balls have radius 0 and contain exactly the real duplicate).
    collapsed = np.tile(real[17], (50, 1))
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0
    assert recall == pytest.approx(1 / 300)


def test_precision_recall_grow_with_k():
    rng = np.random.default_rng(14)
    real, fake = rng.normal(size=(200, 4)), rng.normal(size=(150, 4)) + 0.7
    results = [precision_recall(real, fake, k=k) for k in (1, 3, 10)]
    for (p0, r0), (p1, r1) in pairwise(results):
        assert p0 <= p1 and r0 <= r1  # bigger balls cover at least as much
    assert results[0] != results[-1]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "fn",
    [
        frechet_distance,
        lambda a, b: kernel_distance(a, b, num_subsets=2, subset_size=4),
        precision_recall,
    ],
    ids=["fid", "kid", "precision_recall"],
)
@pytest.mark.parametrize(
    "a,b,match",
    [
        (np.zeros(10), np.zeros((10, 1)), "2-D"),
        (np.zeros((10, 2, 2)), np.zeros((10, 4)), "2-D"),
        (np.zeros((10, 3)), np.zeros((10, 4)), "same number of features"),
        (np.zeros((1, 3)), np.zeros((10, 3)), "at least"),
        (np.full((10, 3), np.nan), np.zeros((10, 3)), "NaN"),
    ],
)
def test_bad_features_raise_value_error(fn, a, b, match):
    with pytest.raises(ValueError, match=match):
        fn(a, b)


def test_bad_parameters_raise_value_error():
    x = np.random.default_rng(15).normal(size=(10, 3))
    with pytest.raises(ValueError, match="num_subsets"):
        kernel_distance(x, x, num_subsets=0)
    with pytest.raises(ValueError, match="subset_size"):
        kernel_distance(x, x, subset_size=1)
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="at least 11 rows"):
        precision_recall(x, x, k=10)  # needs k other points in each set
    with pytest.raises(ValueError, match="sigma_b"):
        frechet_distance_from_moments(np.zeros(3), np.eye(3), np.zeros(3), np.eye(2))
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance_from_moments(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_importing_metrics_does_not_load_tensorflow():
    code = "import sys, aigc_tf.metrics; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(4)
    q, r = rng.standard_normal((37, 5)), rng.standard_normal((1500, 5))
    want = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1)).min(axis=1)
    np.testing.assert_allclose(distances.nearest_distances(q, r, chunk_rows=10), want, rtol=1e-10)
    assert distances.nearest_distances(r[:3], r)[0] == 0.0
