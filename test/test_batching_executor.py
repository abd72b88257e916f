"""BatchingExecutor: messages of many topics arriving between two waits are taken in one pass,
none lost (one message per topic per pass, as with rclpy's own executors)."""

from __future__ import annotations

import time

import rclpy
from std_msgs.msg import String

from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.batching_executor import BatchingExecutor


def test_messages_are_taken_in_batches_without_loss():
    context = rclpy.context.Context()
    rclpy.init(context=context)
    node = rclpy.create_node('batching_test', context=context)
    received, ticks, waits = [], [], []
    topics = [f'/batching_test_{index}' for index in range(8)]
    for topic in topics:
        node.create_subscription(String, topic, lambda msg: received.append(msg.data), qos.RELIABLE)
    node.create_timer(0.1, lambda: ticks.append(time.monotonic()))
    publishers = [node.create_publisher(String, topic, qos.RELIABLE) for topic in topics]
    executor = BatchingExecutor(0.1, context=context)
    executor.add_node(node)
    original = executor._wait_for_ready_callbacks

    def counting(*args, **kwargs):
        waits.append(time.monotonic())
        yield from original(*args, **kwargs)

    executor._wait_for_ready_callbacks = counting
    try:
        deadline = time.monotonic() + 10
        while not all(p.get_subscription_count() for p in publishers) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(2):  # the next pass starts a period after the last
            executor.spin_once(timeout_sec=0.05)
        waits.clear()
        for index, publisher in enumerate(publishers):  # within one period: one pass takes them all
            publisher.publish(String(data=str(index)))
        start = time.monotonic()
        while len(received) < 8 and time.monotonic() < start + 10:
            executor.spin_once(timeout_sec=0.5)
        assert sorted(received) == [str(i) for i in range(8)]
        assert len(waits) <= 2
        ticks.clear()
        end = time.monotonic() + 0.6
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.2)
        assert len(ticks) >= 3  # timers keep their period
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()

