from glob import glob

from setuptools import find_packages, setup

package_name = 'kaiserslautern_vss'

NODES = {
    'event_manager': 'kaiserslautern_vss.nodes.event_manager:main',
    'vision_pipeline': 'kaiserslautern_vss.nodes.vision_pipeline:main',
    'camera_events': 'kaiserslautern_vss.nodes.camera_events:main',
    'operator_console': 'kaiserslautern_vss.nodes.operator_console:main',
}
TOOLS = {
    'vss-users': 'kaiserslautern_vss.tools.users:main',
    'vss-bringup': 'kaiserslautern_vss.tools.bringup:main',
    'vss-demo': 'kaiserslautern_vss.tools.demo:main',
    'vss-bag-info': 'kaiserslautern_vss.tools.bag_info:main',
    'vss-anonymize': 'kaiserslautern_vss.tools.anonymize:main',
    'vss-verify': 'kaiserslautern_vss.tools.verify:main',
    'vss-export': 'kaiserslautern_vss.tools.export:main',
    'vss-evidence': 'kaiserslautern_vss.tools.evidence:main',
    'vss-replay': 'kaiserslautern_vss.tools.replay:main',
    'vss-bag-from-video': 'kaiserslautern_vss.tools.bag_from_video:main',
    'vss-privacy-report': 'kaiserslautern_vss.tools.privacy_report:main',
    'vss-incidents': 'kaiserslautern_vss.tools.incidents:main',
}

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{package_name}']),
        (f'share/{package_name}', ['package.xml']),
        (f'share/{package_name}/launch', glob('launch/*.launch.py')),
        (f'share/{package_name}/config', glob('config/*.yaml') + glob('config/*.rviz') + glob('config/*.xml')),
        (f'share/{package_name}/systemd', glob('deploy/systemd/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='kaiserslautern_vss team',
    maintainer_email='vss@kaiserslautern.de',
    description='Privacy-preserving, AI-assisted video security for the Kaiserslautern town-hall square',
    license='Apache-2.0',
    entry_points={
        'console_scripts': [f'{name} = {target}' for name, target in {**NODES, **TOOLS}.items()],
    },
)
