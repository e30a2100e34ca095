-- Fresh planner statistics after a refresh.
ANALYZE {view}
