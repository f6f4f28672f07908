"""The backup engine: extract -> encode -> store -> watermark. It never imports Textual or Rich;
it reports progress as the typed events in `events` through one callback."""
