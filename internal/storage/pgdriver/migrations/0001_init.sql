-- Version 1: the schema's starting point. The domain tables follow in
-- their own files (tasks, messages, the small stores, the cluster).
SELECT 1;
