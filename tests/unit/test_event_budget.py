"""Events per execution are bounded whatever loops: a burst, then one per refill interval."""
from sluice.kube.events import EventBudget


def test_a_burst_then_one_per_refill_interval_per_execution():
    budget = EventBudget(burst=3, refill_seconds=10)
    assert [budget.take("a", 0) for _ in range(5)] == [True, True, True, False, False]
    assert budget.take("b", 0)  # another execution has its own budget
    assert budget.take("a", 10) and not budget.take("a", 10)
    assert sum(budget.take("a", t / 10) for t in range(1000)) <= 11  # 100 s of a hot loop: about 10 more
