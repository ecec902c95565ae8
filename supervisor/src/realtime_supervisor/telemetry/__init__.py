"""What the worker's main process exposes about the job processes: the multiprocess directory
(`multiproc`). The metrics contract (`realtime_supervisor.metrics`) and the HTTP service
(`realtime_supervisor.service`) keep their import paths."""
