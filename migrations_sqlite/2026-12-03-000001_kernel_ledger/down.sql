DROP TABLE IF EXISTS kernel_events;
