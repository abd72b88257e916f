"""Exit statuses a node process ends with that its supervisor acts on (bringup.respawn)."""

#: exit status of a node that refuses its configuration (kaiserslautern_vss.ros.node_main)
EXIT_BAD_CONFIG = 2
