"""The scheduled compaction function (handler: ``app.handler``)."""
