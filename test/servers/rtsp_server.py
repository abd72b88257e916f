"""A local RTSP server for tests: a video file re-encoded as H.264 (or H.265), on 127.0.0.1 only.

Runs under the SYSTEM interpreter (/usr/bin/python3, which has ``gi``) with GStreamer's RTSP
server. Prints ``READY rtsp://127.0.0.1:<port>/stream`` once it listens, then serves until
killed. Needs: apt-get install gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-ugly
gstreamer1.0-libav gstreamer1.0-plugins-good (and -bad for H.265).

    /usr/bin/python3 test/servers/rtsp_server.py --video ../shared/data/vtest.avi [--port 0] [--codec h264]
        [--digest user:password]

``--digest`` lets only that user in, with Digest authentication (as a MOBOTIX camera's RTSP
server does once its users need a password).
"""

import argparse
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

ENCODERS = {
    'h264': 'x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 '
            'config-interval=1',
    'h265': 'x265enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph265pay name=pay0 pt=96 '
            'config-interval=1',
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--video', required=True)
    parser.add_argument('--port', type=int, default=0, help='0: a free port')
    parser.add_argument('--codec', choices=sorted(ENCODERS), default='h264')
    parser.add_argument('--path', default='/stream')
    parser.add_argument('--digest', default='', metavar='USER:PASSWORD', help='require Digest login')
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address('127.0.0.1')
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.video.replace('"', '\\"')
    factory.set_launch(f'( filesrc location="{location}" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! '
                       f'{ENCODERS[args.codec]} )')
    factory.set_shared(True)
    if args.digest:
        user, _, password = args.digest.partition(':')
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string('media.factory.role', 'viewer')
        auth.add_digest(user, password, token)
        server.set_auth(auth)
        factory.add_role_from_structure(Gst.Structure.from_string(
            'viewer, media.factory.access=(boolean)true, media.factory.construct=(boolean)true')[0])
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f'cannot listen on 127.0.0.1:{args.port}', file=sys.stderr)
        return 1
    print(f'READY rtsp://127.0.0.1:{server.get_bound_port()}{args.path}', flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
