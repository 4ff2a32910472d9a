"""The Dawid-Skene label model against cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from train.weak.label_model import ABSTAIN, DawidSkene, posterior

A = ABSTAIN


def test_posterior_of_a_two_rule_two_class_case_computed_by_hand():
    prior = np.array([0.6, 0.4])
    # confusion[rule][true class][outcome]; outcomes: class 0, class 1, abstain.
    confusion = np.array([[[0.7, 0.1, 0.2], [0.2, 0.6, 0.2]],
                          [[0.4, 0.1, 0.5], [0.1, 0.3, 0.6]]])
    votes = np.array([[0, 1], [1, A], [A, A]])
    proba = posterior(votes, prior, confusion)
    # (0, 1): 0.6 * 0.7 * 0.1 = 0.042 against 0.4 * 0.2 * 0.3 = 0.024.
    np.testing.assert_allclose(proba[0], [0.042 / 0.066, 0.024 / 0.066])
    # (1, abstain): 0.6 * 0.1 * 0.5 = 0.03 against 0.4 * 0.6 * 0.6 = 0.144.
    np.testing.assert_allclose(proba[1], [0.03 / 0.174, 0.144 / 0.174])
    # No rule voted: no posterior at all.
    assert np.isnan(proba[2]).all()


def test_two_rules_that_always_agree():
    votes = np.array([[0, 0]] * 30 + [[1, 1]] * 20)
    model = DawidSkene(n_classes=2).fit(votes)
    proba = model.predict_proba(votes)
    assert (proba.argmax(axis=1) == votes[:, 0]).all()
    assert proba.max(axis=1).min() > 0.95
    np.testing.assert_allclose(model.prior, [0.6, 0.4], atol=0.02)
    np.testing.assert_allclose(model.rule_accuracy(votes), [1.0, 1.0], atol=0.01)


def test_a_rule_that_always_votes_one_label_does_not_reach_certainty():
    votes = np.array([[0]] * 10)
    proba = DawidSkene(n_classes=2).fit(votes).predict_proba(votes)
    assert (proba[:, 0] > 0.5).all() and (proba[:, 0] < 1.0).all()


def test_all_abstain_gives_no_label_and_does_not_move_the_fit():
    votes = np.array([[0, 0]] * 30 + [[1, 1]] * 20)
    with_silence = np.vstack([votes, [[A, A]] * 500])
    model = DawidSkene(n_classes=2).fit(with_silence)
    np.testing.assert_allclose(model.prior, DawidSkene(n_classes=2).fit(votes).prior)
    assert np.isnan(model.predict_proba(np.array([[A, A]]))).all()


def test_nothing_voted_at_all():
    model = DawidSkene(n_classes=3).fit(np.full((4, 2), A))
    np.testing.assert_allclose(model.prior, [1 / 3] * 3)
    assert np.isnan(model.predict_proba(np.full((4, 2), A))).all()


def test_accurate_rules_outweigh_a_random_one():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 2, size=2000)

    def noisy(accuracy):
        return np.where(rng.random(truth.size) < accuracy, truth, 1 - truth)

    votes = np.column_stack([noisy(0.9), noisy(0.85), rng.integers(0, 2, size=truth.size)])
    model = DawidSkene(n_classes=2).fit(votes)
    accuracy = model.rule_accuracy(votes)
    assert accuracy[0] == pytest.approx(0.9, abs=0.03) and accuracy[1] == pytest.approx(0.85, abs=0.03)
    assert accuracy[2] == pytest.approx(0.5, abs=0.05)
    # When the two accurate rules agree the random one cannot overturn them; when they disagree it cannot make the
    # model sure either way.
    agree = votes[:, 0] == votes[:, 1]
    proba = model.predict_proba(votes)
    assert (proba[agree].argmax(axis=1) == votes[agree, 0]).all() and proba[agree].max(axis=1).min() > 0.95
    assert proba[~agree].max(axis=1).max() < 0.65


def test_a_rule_that_fires_on_one_class_only_is_evidence_for_it():
    # Rule 0 votes 1 on most class-1 articles; rule 1 votes 0 on every class-0 article and on a few class-1 ones.
    votes = np.array([[1, A]] * 40 + [[1, 0]] * 10 + [[A, 0]] * 50)
    model = DawidSkene(n_classes=2).fit(votes)
    proba = model.predict_proba(np.array([[1, A], [A, 0]]))
    assert proba[0, 1] > 0.9 and proba[1, 0] > 0.9


def test_votes_outside_the_classes_are_refused():
    with pytest.raises(ValueError, match="votes must be -1 .abstain. or a class index 0..1"):
        DawidSkene(n_classes=2).fit(np.array([[0, 2]]))


def test_a_vote_never_counts_against_its_own_label():
    # Vote patterns of five rules on 27,410 unlabelled ANT articles (counts of each pattern; all-abstain rows left
    # out): rules 0-1 vote yes (0), rule 2 votes no where no security word occurs, rule 3 votes no on attack
    # headlines, rule 4 on other topics' headlines. Unconstrained, EM explained the attack cluster as `yes`
    # articles on which rule 3 is wrong (its accuracy fell to 0.05): a label switch.
    patterns = {(A, A, 1, A, A): 10534, (A, A, 1, A, 1): 2214, (A, A, A, 1, A): 1346, (A, A, A, A, 1): 901,
                (A, A, 1, 1, A): 318, (0, A, A, A, A): 98, (0, 0, A, A, A): 26, (A, 0, A, A, A): 18,
                (A, A, A, 1, 1): 17, (A, A, 1, 1, 1): 12, (A, 0, A, 1, A): 2, (0, A, 1, A, A): 2, (A, 0, A, A, 1): 1}
    votes = np.array([pattern for pattern, count in patterns.items() for _ in range(count)])
    model = DawidSkene(n_classes=2).fit(votes)
    assert (model.rule_accuracy(votes) > 0.9).all()
    proba = model.predict_proba(np.array([[A, A, A, 1, A], [0, A, A, A, A], [0, 0, A, A, A]]))
    assert proba[0, 1] > 0.9 and proba[1, 0] > 0.9 and proba[2, 0] > 0.9
    # The constraint: P(a rule votes l | class l) >= P(it votes l | any other class), for every rule and label.
    for rule, label in ((0, 0), (1, 0), (2, 1), (3, 1), (4, 1)):
        assert model.confusion[rule, label, label] >= model.confusion[rule, 1 - label, label]


def test_a_label_no_rule_votes_for_gets_no_mass():
    # Three classes; no rule ever votes class 2, so nothing can tell its articles apart: it must not become a
    # second copy of class 0 or 1 that takes half their articles.
    votes = np.array([[A, A, A]] * 5 + [[A, 0, 0]] * 5 + [[1, A, A]] * 5 + [[1, 1, A]] * 5)
    model = DawidSkene(n_classes=3).fit(votes)
    assert model.prior[2] == pytest.approx(1 / (15 + 3))  # the smoothing pseudo-article alone (15 covered rows)
    proba = model.predict_proba(np.array([[1, A, A], [A, 0, 0]]))
    assert proba[0, 1] > 0.9 and proba[1, 0] > 0.9 and (proba[:, 2] < 0.1).all()
