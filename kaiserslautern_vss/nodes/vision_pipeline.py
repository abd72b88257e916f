"""vision_pipeline: camera drivers, detector and privacy node in one process, frames in memory.

    vision_pipeline /vss/cam01/camera_driver [/vss/cam02/camera_driver ...] /vss/detector /vss/privacy \\
        --ros-args --params-file graph.yaml

The nodes keep their names, parameters and diagnostics (config/*.yaml sections work as they
are); what changes is how frames travel: camera -> detection scheduler -> masking ->
behaviour (poses on the tracked persons) -> publish, handed on in memory
(kaiserslautern_vss.pipeline.vision), like ROS 2 composition with intra-process hand-off.
Nothing from the bus reaches the privacy stage, so another local process cannot unmask a
frame, and unmasked frames are on the bus only behind the camera driver's commissioning
switch ``publish_raw``. Cameras served by the privacy node without a
driver here are read from ``/vss/<cam>/image_raw`` (replays).

The process ends with status 0 once every hosted camera's finite source has ended and the
pipeline has finished its frames.
"""

from __future__ import annotations

import logging
import sys

import cv2
import rclpy.logging
from rclpy.impl.rcutils_logger import RcutilsLogger
from rclpy.node import Node
from rclpy.utilities import remove_ros_args

from kaiserslautern_vss.nodes.camera_driver import CameraDriverNode
from kaiserslautern_vss.nodes.detector import DetectorNode
from kaiserslautern_vss.nodes.privacy import PrivacyNode
from kaiserslautern_vss.pipeline.vision import PipelineOutput, VisionPipeline
from kaiserslautern_vss.ros.exit_codes import EXIT_BAD_CONFIG
from kaiserslautern_vss.ros.node_main import StartupError, run_node

NODE_CLASSES = {'camera_driver': CameraDriverNode, 'detector': DetectorNode, 'privacy': PrivacyNode}
FINISH_CHECK_S = 0.2
DRAIN_TIMEOUT_S = 10.0


class RosLogHandler(logging.Handler):
    """Python logging (the camera and pipeline threads') into a ROS logger, so it reaches /rosout."""

    def __init__(self, logger: RcutilsLogger) -> None:
        super().__init__()
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if record.levelno >= logging.ERROR:
            self.logger.error(message)
        elif record.levelno >= logging.WARNING:
            self.logger.warning(message)
        else:
            self.logger.info(message)


def check_node_names(fqns: list[str]) -> str | None:
    """Why these node names cannot make a vision pipeline, or None."""
    bad = [fqn for fqn in fqns if not fqn.startswith('/') or fqn.endswith('/')
           or fqn.rpartition('/')[2] not in NODE_CLASSES]
    if bad:
        return (f'expected fully qualified names of {", ".join(NODE_CLASSES)} nodes like '
                f'/vss/cam01/camera_driver, got {" ".join(bad)}')
    kinds = [fqn.rpartition('/')[2] for fqn in fqns]
    if kinds.count('detector') != 1 or kinds.count('privacy') != 1:
        return f'need exactly one detector and one privacy node, got {" ".join(fqns) or "none"}'
    return None


def compose(fqns: list[str]) -> list[Node]:
    """The nodes, wired into one started pipeline; destroyed in list order (cameras first, then
    the inference workers, then the publishers they use)."""
    log = logging.getLogger('kaiserslautern_vss')  # camera and pipeline threads log here
    log.setLevel(logging.INFO)
    log.addHandler(RosLogHandler(rclpy.logging.get_logger('vision_pipeline')))
    nodes: list[Node] = []
    try:
        for fqn in fqns:
            namespace, _, name = fqn.rpartition('/')
            nodes.append(NODE_CLASSES[name](name, namespace or '/'))
        drivers = [node for node in nodes if isinstance(node, CameraDriverNode)]
        detector = next(node for node in nodes if isinstance(node, DetectorNode))
        privacy = next(node for node in nodes if isinstance(node, PrivacyNode))
        _check_cameras(drivers, detector, privacy)
        pipeline = _wire(drivers, detector, privacy)
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    pipeline.start()
    for driver in drivers:
        driver.start(pipeline.submit)
    if drivers:
        _shut_down_when_all_finished(drivers, pipeline)
    return [*drivers, detector, privacy]


def _check_cameras(drivers: list[CameraDriverNode], detector: DetectorNode, privacy: PrivacyNode) -> None:
    served = privacy.cameras
    if sorted(detector.settings['cameras']) != sorted(served):
        raise StartupError(f'vision_pipeline: detector cameras {detector.settings["cameras"]} and privacy '
                           f'cameras {served} differ; both must serve the same cameras')
    unserved = [driver.camera_id for driver in drivers if driver.camera_id not in served]
    if unserved:
        raise StartupError(f'vision_pipeline: cameras {", ".join(unserved)} have a driver but are not in '
                           f'the privacy node\'s cameras {served}')


def _wire(drivers: list[CameraDriverNode], detector: DetectorNode, privacy: PrivacyNode) -> VisionPipeline:
    def output(result: PipelineOutput) -> None:
        if result.detections is not None:
            detector.publish(result.camera_id, result.detections, result.context)
        privacy.publish(result)
        if result.behaviour is not None:
            detector.publish_behaviour(result)

    pipeline = VisionPipeline(detector.detectors, privacy.anonymizers(detector.grade),
                              detector.scheduler_settings, privacy.pipeline_settings(detector.labels),
                              output, privacy.now_ns, privacy.report, detector.behaviour)
    detector.attach(pipeline.scheduler, pipeline.counts)
    driven = {driver.camera_id for driver in drivers}
    privacy.attach(pipeline, [c for c in privacy.cameras if c not in driven])
    return pipeline


def _shut_down_when_all_finished(drivers: list[CameraDriverNode], pipeline: VisionPipeline) -> None:
    """Status 0 once every camera's finite source has ended and its last frames are out."""
    def check() -> None:
        if all(driver.finished for driver in drivers):
            timer.cancel()
            for driver in drivers:
                driver.get_logger().info(f'end of {driver.description} after {driver.feed.delivered} frames')
            pipeline.scheduler.wait_idle(DRAIN_TIMEOUT_S)
            drivers[0].context.try_shutdown()
    timer = drivers[0].create_timer(FINISH_CHECK_S, check)


def main(args: list[str] | None = None) -> int:
    fqns = remove_ros_args(sys.argv if args is None else args)[1:]
    problem = check_node_names(fqns)
    if problem:
        print(f'[FATAL] vision_pipeline: {problem}', file=sys.stderr, flush=True)
        return EXIT_BAD_CONFIG
    # The inference workers already keep every core busy with one frame each; OpenCV's own
    # thread pool (resize, warps, JPEG) would only add hand-offs between them.
    cv2.setNumThreads(1)
    return run_node(lambda: compose(fqns), args)


if __name__ == '__main__':
    raise SystemExit(main())
