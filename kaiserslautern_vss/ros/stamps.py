"""Header stamps <-> integer nanoseconds, the unit the core modules work in."""

from builtin_interfaces.msg import Time
from std_msgs.msg import Header

from kaiserslautern_vss.timekeeping import NS_PER_S



def header_stamp_ns(header: Header) -> int:
    return header.stamp.sec * NS_PER_S + header.stamp.nanosec


def time_from_ns(stamp_ns: int) -> Time:
    return Time(sec=stamp_ns // NS_PER_S, nanosec=stamp_ns % NS_PER_S)
