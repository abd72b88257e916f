"""Leitstelle operator console: a ROS-free HTTPS web application (accounts, live view,
incidents, evidence, export, audit). ``kaiserslautern_vss.nodes.operator_console`` feeds
it anonymised topics; nothing here imports ROS."""
