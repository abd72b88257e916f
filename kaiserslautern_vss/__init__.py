"""kaiserslautern_vss: privacy-preserving video security for the Kaiserslautern town-hall square.

Layout: ``camera``, ``detection``, ``privacy`` and ``events`` hold the ROS-free logic;
``ros`` converts between that logic and ROS messages; ``nodes`` are the thin rclpy
adapters; ``bringup`` derives the node graph from ``config/``; ``tools`` are CLIs.
"""
