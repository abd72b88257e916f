"""vss-bag-info: what an incident bag holds (topics, counts, time span, the incident)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from rosbags.rosbag2 import Reader

from kaiserslautern_vss.ros.typestore import vss_typestore

from kaiserslautern_vss.bounded_json import UntrustedJsonError, parse_untrusted_json

EVENTS_TOPIC = '/vss/events'


@dataclass
class BagSummary:
    path: Path
    start_ns: int
    end_ns: int
    topics: dict[str, tuple[str, int]]  # topic -> (type, message count)
    events: list[dict] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    def describe(self) -> str:
        lines = [f'{self.path}  ({self.duration_s:.1f} s)']
        lines += [f'  {topic:48s} {msgtype:36s} {count:6d} msgs'
                  for topic, (msgtype, count) in sorted(self.topics.items())]
        for event in self.events:
            lines.append(f'  incident {event.get("id", "?")}: {event.get("phase", "?")} rule={event.get("rule")} '
                         f'camera={event.get("camera")} started={event.get("started")}')
        return '\n'.join(lines)


def summarize_bag(path: Path) -> BagSummary:
    typestore = vss_typestore()
    with Reader(path) as reader:
        topics = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        events = []
        event_connections = [c for c in reader.connections if c.topic == EVENTS_TOPIC]
        # rosbags reads every topic when given no connections
        for connection, _, raw in reader.messages(connections=event_connections) if event_connections else ():
            text = typestore.deserialize_cdr(raw, connection.msgtype).data
            try:
                events.append(parse_untrusted_json(text))
            except UntrustedJsonError:  # recorded from the bus: anyone may have published it
                events.append({'raw': text})
        return BagSummary(Path(path), reader.start_time, reader.end_time, topics, events)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='vss-bag-info', description=__doc__)
    parser.add_argument('bags', nargs='+', type=Path, help='incident bag directories')
    args = parser.parse_args(argv)
    for bag in args.bags:
        print(summarize_bag(bag).describe())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
