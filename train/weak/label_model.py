"""Combining labelling rules' votes: the Dawid-Skene model, fitted by EM without any gold label.

Each article has an unknown class y (prior `prior[y]`); rule j's vote is drawn from its own row `confusion[j, y]`
over the classes and ABSTAIN, independently of the other rules given y. Abstaining is an outcome like a vote: a
rule that fires on one class and stays silent on the others is evidence for that class when it fires and, more
weakly, against it when it does not. EM starts from the majority vote, estimates the prior and the confusion rows,
then alternates with the posteriors until they move less than `tol` or after `max_iter` rounds.

Smoothing adds `smoothing` pseudo-articles to each class's prior and to each confusion row; a row's pseudo-articles
follow the rule's outcome shares over all articles (Laplace-smoothed). So no probability is ever exactly 0 or 1 (a
rule that always votes one label does not make it certain), and a class with little evidence looks like the
population rather than uniform, which would otherwise pull its few articles into the largest class.

One constraint keeps EM from switching labels: a rule's vote for l is never more likely under another class than
under l (P(vote l | k) is capped at P(vote l | l), the excess moving to abstaining). Without it, on ANT, the rare
`yes` class absorbed the articles of an attack-headline rule that votes `no`, whose accuracy fell to 0.05.

Articles on which every rule abstains carry no evidence: they are left out of the fit and get no posterior (NaN).
A class that no rule ever votes for cannot be told apart from the others (EM would make it a copy of one and split
its articles): it keeps its smoothing-only prior and the population's outcome shares as its confusion rows.
"""

from __future__ import annotations

import numpy as np

ABSTAIN = -1


class DawidSkene:
    """The Dawid-Skene label model over `n_classes` classes; votes are class indices or ABSTAIN (-1)."""

    def __init__(self, n_classes: int, smoothing: float = 1.0, max_iter: int = 100, tol: float = 1e-6):
        self.n_classes = n_classes
        self.smoothing = smoothing
        self.max_iter = max_iter
        self.tol = tol
        self.prior = np.full(n_classes, 1 / n_classes)
        self.confusion: np.ndarray | None = None
        self.iterations = 0
        self._voted = np.ones(n_classes, dtype=bool)  # the classes some rule votes for (set by `fit`)

    def fit(self, votes: np.ndarray) -> DawidSkene:
        """Estimate the class prior and each rule's confusion rows from the votes (n articles x m rules)."""
        votes = self._check(votes)
        covered = votes[(votes != ABSTAIN).any(axis=1)]
        outcomes = self._one_hot(covered)
        if not len(covered):
            self.confusion = np.full((votes.shape[1], self.n_classes, self.n_classes + 1), 1 / (self.n_classes + 1))
            return self
        shares = (outcomes.sum(axis=0) + 1) / (len(covered) + self.n_classes + 1)
        self._voted = np.isin(np.arange(self.n_classes), covered[covered != ABSTAIN])
        belief = majority(covered, self.n_classes)
        for iteration in range(1, self.max_iter + 1):
            self._estimate(belief, outcomes, shares)
            updated = _posterior(outcomes, self.prior, self.confusion)
            converged = np.abs(updated - belief).max() < self.tol
            belief = updated
            if converged:
                break
        self.iterations = iteration
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """Posterior class probabilities (n x classes); NaN rows where every rule abstained."""
        if self.confusion is None:
            raise RuntimeError("fit the label model before predicting")
        return posterior(self._check(votes), self.prior, self.confusion)

    def rule_accuracy(self, votes: np.ndarray) -> np.ndarray:
        """Each rule's estimated accuracy: the mean posterior of the label it voted, over the articles it voted on."""
        votes = self._check(votes)
        proba = self.predict_proba(votes)
        accuracy = np.full(votes.shape[1], np.nan)
        for j in range(votes.shape[1]):
            voted = np.flatnonzero(votes[:, j] != ABSTAIN)
            if len(voted):
                accuracy[j] = proba[voted, votes[voted, j]].mean()
        return accuracy

    def _estimate(self, belief: np.ndarray, outcomes: np.ndarray, shares: np.ndarray) -> None:
        """M-step: the prior and confusion rows that the current class beliefs imply, smoothed (see the module)."""
        alpha, k = self.smoothing, self.n_classes
        belief = belief * self._voted  # a class no rule votes for keeps its smoothing-only estimates
        self.prior = (belief.sum(axis=0) + alpha) / (len(belief) + k * alpha)
        counts = np.einsum("ik,ijo->jko", belief, outcomes) + alpha * shares[:, None, :]
        self.confusion = _vote_for_own_label(counts / counts.sum(axis=2, keepdims=True))

    def _one_hot(self, votes: np.ndarray) -> np.ndarray:
        """n x m x (classes + 1): outcome index `classes` stands for ABSTAIN."""
        index = np.where(votes == ABSTAIN, self.n_classes, votes)
        return np.eye(self.n_classes + 1)[index]

    def _check(self, votes: np.ndarray) -> np.ndarray:
        votes = np.asarray(votes, dtype=np.int64)
        if votes.ndim != 2:
            raise ValueError(f"votes must be a 2-D array (articles x rules), got shape {votes.shape}")
        if votes.size and (votes.min() < ABSTAIN or votes.max() >= self.n_classes):
            raise ValueError(f"votes must be -1 (abstain) or a class index 0..{self.n_classes - 1}")
        return votes


def _vote_for_own_label(confusion: np.ndarray) -> np.ndarray:
    """Cap P(vote l | class k) at P(vote l | class l), the excess going to abstaining: a vote is never evidence
    against its own label."""
    k = confusion.shape[1]
    own = confusion[:, np.arange(k), np.arange(k)]  # rules x labels: P(vote l | class l)
    capped = np.minimum(confusion[:, :, :k], own[:, None, :])
    confusion = confusion.copy()
    confusion[:, :, k] += (confusion[:, :, :k] - capped).sum(axis=2)
    confusion[:, :, :k] = capped
    return confusion


def majority(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """Soft majority vote: each article's share of votes per class (ties split evenly); rows need one vote."""
    counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1).astype(float)
    return counts / counts.sum(axis=1, keepdims=True)


def posterior(votes: np.ndarray, prior: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """P(class | votes) under the model (confusion: rules x classes x (classes + abstain)); NaN where all abstain."""
    n_classes = len(prior)
    outcomes = np.eye(n_classes + 1)[np.where(votes == ABSTAIN, n_classes, votes)]
    proba = _posterior(outcomes, prior, confusion)
    proba[(votes == ABSTAIN).all(axis=1)] = np.nan
    return proba


def _posterior(outcomes: np.ndarray, prior: np.ndarray, confusion: np.ndarray) -> np.ndarray:
    """E-step in log space: log prior + each rule's log probability of its outcome, normalized per article."""
    log = np.log(prior) + np.einsum("ijo,jko->ik", outcomes, np.log(confusion))
    log -= log.max(axis=1, keepdims=True)
    proba = np.exp(log)
    return proba / proba.sum(axis=1, keepdims=True)
