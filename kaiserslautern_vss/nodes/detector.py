"""Detector node: the detector sessions of the vision pipeline, /vss/<cam>/detections out,
and its behaviour stage: /vss/<cam>/behaviour and /vss/<cam>/skeletons out.

Hosted by the vision_pipeline process (nodes/vision_pipeline.py). It loads the pool of
detector sessions the pipeline's :class:`DetectionScheduler` runs (fair newest-frame-wins
slots per camera, batching, motion gating, tracking), publishes each frame's validated
detections with the frame's header for the event manager, rviz2 and recordings, and reports
the scheduler on /diagnostics. It reads nothing from the bus: frames come in memory.

With ``behaviour`` on it also loads the behaviour stage (pose model if found) that the
pipeline runs on each masked frame's tracked persons, and publishes its cues and skeletons
(numbers only). Without the pose model only the box-and-track cues run: said as a WARN on
/diagnostics and in a start-up message on /vss/events, like the detector's grade.

No annotated image here: an annotated view drawn on raw frames would carry unmasked faces.
The commissioning view (/vss/<cam>/image_annotated) is drawn by the privacy node on the
anonymised frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rclpy._rclpy_pybind11 import RCLError
from rclpy.node import Node
from std_msgs.msg import Header, String
from vision_msgs.msg import Detection2DArray
from visualization_msgs.msg import MarkerArray

from kaiserslautern_vss.behaviour.messages import encode_behaviour
from kaiserslautern_vss.behaviour.model_status import (behaviour_info_json, model_less_warning, pose_model_problem,
                                                       resolve_pose_model_path)
from kaiserslautern_vss.behaviour.pose_estimator import PoseModelError
from kaiserslautern_vss.behaviour.stage import BehaviourStage, load_pose_estimator
from kaiserslautern_vss.behaviour.types import BehaviourAnalyzer, BehaviourSettings
from kaiserslautern_vss.detection.factory import create_detector_pool
from kaiserslautern_vss.detection.grade import detector_info_json
from kaiserslautern_vss.detection.onnx_detector import DetectorSettingsError, ModelLoadError
from kaiserslautern_vss.detection.scheduler import DetectionScheduler, default_session_count
from kaiserslautern_vss.detection.types import Detections
from kaiserslautern_vss.parameters.detector import PARAMETERS, detector_settings, scheduler_settings
from kaiserslautern_vss.pipeline.vision import CameraCounts, PipelineOutput
from kaiserslautern_vss.privacy.detection_validation import detector_labels
from kaiserslautern_vss.ros import qos
from kaiserslautern_vss.ros.detection_conversion import detections_to_msg
from kaiserslautern_vss.ros.diagnostics import OK, WARN, DiagnosticsReporter
from kaiserslautern_vss.ros.node_main import StartupError
from kaiserslautern_vss.ros.parameters import declare_parameters
from kaiserslautern_vss.ros.payload_guard import PayloadGuard
from kaiserslautern_vss.ros.skeleton_markers import skeleton_markers
from kaiserslautern_vss.ros.topics import EVENTS, camera_topic

#: a camera silent this long is reported (it simply leaves the batches meanwhile)
STALE_CAMERA_S = 5.0
#: /vss/<cam>/behaviour is published on every analysed frame with a person or a cue above 0
#: (rules see scores rise and fall frame by frame) and at this period otherwise, so that a
#: subscriber can tell "nothing happening" from "behaviour stage silent" at little cost
BEHAVIOUR_KEEPALIVE_S = 1.0


class DetectorNode(Node):
    def __init__(self, name: str = 'detector', namespace: str | None = None) -> None:
        super().__init__(name, namespace=namespace)
        self.guard = PayloadGuard(self)  # rclpy's parameter services take anyone's requests
        self.settings = declare_parameters(self, PARAMETERS)
        params = self.settings
        try:
            settings = detector_settings(params)
            sessions = params['sessions'] or default_session_count(settings.intra_op_threads,
                                                                   cameras=len(params['cameras']))
            self.detectors, self.description = create_detector_pool(
                settings, sessions, params['allow_hog_fallback'], params['require_privacy_grade_model'])
        except (DetectorSettingsError, ModelLoadError) as error:
            super().destroy_node()
            raise StartupError(f'detector: {error}') from error
        self.grade = self.detectors[0].grade
        self.get_logger().info(f'detector: {self.description}; grade {self.grade.value}')
        # Late joiners (console, alert bridges, recordings) learn what the masking relies on.
        self.info_pub = self.create_publisher(String, EVENTS, qos.LATCHED)
        self.info_pub.publish(String(data=detector_info_json(
            self.get_fully_qualified_name(), self.description, self.grade, params['cameras'])))
        self.publishers_by_camera = {
            camera_id: self.create_publisher(Detection2DArray, camera_topic(camera_id, 'detections'),
                                             qos.RELIABLE)
            for camera_id in params['cameras']}
        self.scheduler_settings = scheduler_settings(params)
        self.scheduler: DetectionScheduler | None = None
        self.pipeline_counts: Callable[[], Mapping[str, CameraCounts]] | None = None
        self.previous_published: dict[str, tuple[int, float]] = {}
        self.behaviour: BehaviourAnalyzer | None = None
        self.pose_model = ''
        if params['behaviour']:
            self._start_behaviour(params)
        self.diagnostics = DiagnosticsReporter(self, self._diagnostics, guard=self.guard)

    def _start_behaviour(self, params: Mapping[str, Any]) -> None:
        """The behaviour stage, with the pose model when found, and its outputs."""
        problem = pose_model_problem(params['pose_model_path'], params['require_pose_model'])
        self.pose_model = resolve_pose_model_path(params['pose_model_path'])
        try:
            if problem:
                raise PoseModelError(problem)
            estimator = load_pose_estimator(self.pose_model) if self.pose_model else None
        except PoseModelError as error:
            super().destroy_node()
            raise StartupError(f'detector: {error}') from error
        self.behaviour = BehaviourStage(estimator, BehaviourSettings(
            pose_crops_per_frame=params['pose_crops_per_frame']))
        if self.pose_model:
            self.get_logger().info(f'behaviour: pose model {self.pose_model}')
        else:
            self.get_logger().warning(f'behaviour: {model_less_warning()}')
        self.info_pub.publish(String(data=behaviour_info_json(
            self.get_fully_qualified_name(), self.pose_model, params['cameras'])))
        self.behaviour_pubs = {camera_id: self.create_publisher(String, camera_topic(camera_id, 'behaviour'),
                                                                qos.RELIABLE)
                               for camera_id in params['cameras']}
        self.skeleton_pubs = {camera_id: self.create_publisher(MarkerArray, camera_topic(camera_id, 'skeletons'),
                                                               qos.RELIABLE)
                              for camera_id in params['cameras']}
        self.behaviour_sent_ns = dict.fromkeys(params['cameras'], 0)

    @property
    def labels(self) -> frozenset[str]:
        """Every label the detector can give: the allowlist, or all classes of the model."""
        return detector_labels(self.detectors[0], self.settings['class_allowlist'])

    def attach(self, scheduler: DetectionScheduler,
               pipeline_counts: Callable[[], Mapping[str, CameraCounts]] | None = None) -> None:
        """The scheduler running this node's sessions (reported in diagnostics, stopped on destroy)
        and the pipeline's counters (its behaviour stage's, in diagnostics)."""
        self.scheduler = scheduler
        self.pipeline_counts = pipeline_counts

    def publish(self, camera_id: str, detections: Detections, header: Header) -> None:
        """Called from inference workers; on shutdown (SIGINT shuts the context down before
        destroy_node stops them) the last results have nowhere to go."""
        if self.context.ok():
            try:
                self.publishers_by_camera[camera_id].publish(detections_to_msg(detections, header))
            except RCLError:
                if self.context.ok():
                    raise

    def publish_behaviour(self, output: PipelineOutput) -> None:
        """Cues (see :data:`BEHAVIOUR_KEEPALIVE_S`) and skeletons of one analysed frame; called
        from inference workers like :meth:`publish`."""
        camera_id, stamp_ns, behaviour = output.camera_id, output.stamp_ns, output.behaviour
        due = ('person' in output.detections.labels or any(cue.score > 0.0 for cue in behaviour.cues)
               or stamp_ns - self.behaviour_sent_ns[camera_id] >= BEHAVIOUR_KEEPALIVE_S * 1e9)
        if not self.context.ok():
            return
        try:
            if due:
                self.behaviour_pubs[camera_id].publish(String(data=encode_behaviour(camera_id, stamp_ns, behaviour)))
                self.behaviour_sent_ns[camera_id] = stamp_ns
            if behaviour.poses or due:  # an empty array (DELETEALL) clears the last skeletons
                self.skeleton_pubs[camera_id].publish(skeleton_markers(behaviour.poses, output.context))
        except RCLError:
            if self.context.ok():
                raise

    def _diagnostics(self) -> dict[str, tuple[bytes, str, dict[str, object]]]:
        if self.scheduler is None:
            return {}
        now_s = self.get_clock().now().nanoseconds * 1e-9
        level, grade_text = ((OK, 'privacy-grade') if self.grade.privacy_grade
                             else (WARN, 'NOT privacy-grade, privacy masks conservatively'))
        report = {'model': (level, f'{grade_text}: {self.description}', {'grade': self.grade.value})}
        behaviour = self._behaviour_counts()
        if self.behaviour is not None:
            level, message = (OK, f'pose cues on: {self.pose_model}') if self.pose_model else \
                (WARN, model_less_warning())
            report['behaviour'] = (level, message, {'pose_model': self.pose_model or 'none'})
        for camera_id, stats in self.scheduler.stats().items():
            published_before, then_s = self.previous_published.get(camera_id, (stats.published, now_s))
            self.previous_published[camera_id] = (stats.published, now_s)
            fps = (stats.published - published_before) / (now_s - then_s) if now_s > then_s else 0.0
            silent_s = stats.seconds_since_frame
            level, message = OK, 'running'
            if silent_s is None:
                level, message = WARN, 'no frames yet'
            elif silent_s > STALE_CAMERA_S:
                level, message = WARN, f'no frames for {silent_s:.0f} s'
            report[camera_id] = (level, message, {
                'fps': f'{fps:.1f}', 'received': stats.received, 'inferences': stats.inferred,
                'gated_out': stats.gated, 'shed': stats.dropped, 'failed': stats.failed,
                'latency_p50_ms': f'{stats.latency_p50_s * 1e3:.1f}',
                'latency_p99_ms': f'{stats.latency_p99_s * 1e3:.1f}',
                'sessions': self.scheduler.sessions, **behaviour.get(camera_id, {})})
        return report

    def _behaviour_counts(self) -> dict[str, dict[str, object]]:
        """Per camera: frames analysed, analyses failed (the frame left masked without cues) and
        the worker CPU time spent in the behaviour stage since start (its share of the site)."""
        if self.behaviour is None or self.pipeline_counts is None:
            return {}
        return {camera_id: {'behaviour_analysed': counts.behaviour.analysed,
                            'behaviour_failed': counts.behaviour.failed,
                            'behaviour_cpu_ms': f'{counts.behaviour.cpu_s * 1e3:.0f}'}
                for camera_id, counts in self.pipeline_counts().items()}

    def destroy_node(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
        super().destroy_node()
