"""Whole-slide inference: read a slide (OpenSlide or tifffile), segment it tile by tile at the model's
resolution with blended overlaps, and write QuPath-ready glands (GeoJSON), a pyramidal mask TIFF, an
overlay and a per-slide summary. ``tools/predict_wsi.py`` is the command line."""
from wsi.pipeline import SlideSettings, segment_slide
from wsi.reader import Slide, is_slide_file, open_slide

__all__ = ["Slide", "SlideSettings", "is_slide_file", "open_slide", "segment_slide"]
