"""What a worker process's jobs measure (a FigureLog, the worker's only metrics) reaches the front's registry
once, in full: stage times, engine errors and late frames, each taken once."""

from __future__ import annotations

from livepuppet.streaming.server.metrics import FigureLog, Figures, JobMetrics, ServerMetrics, Stage


def report(metrics: JobMetrics) -> None:
    """What a job does while it runs, through the contract both sides implement."""
    metrics.observe_stage(Stage.RENDER, 0.005)
    metrics.observe_stage(Stage.ENCODE, 0.002)
    metrics.count_engine_error()
    metrics.count_late_frames(3)


def test_a_workers_figures_are_replayed_into_the_front_once() -> None:
    log, front, direct = FigureLog(), ServerMetrics.create(), ServerMetrics.create()
    report(log)
    report(direct)  # the same job in the server process
    figures = log.take()
    assert figures == Figures(stages=(("render", 0.005), ("encode", 0.002)), engine_errors=1, late_frames=3)
    assert log.take() == Figures()  # taken once: the next report starts empty
    front.replay(figures)
    for name, labels in (("livepuppet_stage_seconds_count", {"stage": "render"}),
                         ("livepuppet_stage_seconds_sum", {"stage": "encode"}),
                         ("livepuppet_engine_errors_total", {}),
                         ("livepuppet_frames_dropped_total", {"where": "late"})):
        value = front.registry.get_sample_value(name, labels)
        assert value is not None and value == direct.registry.get_sample_value(name, labels), name
