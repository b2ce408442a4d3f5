"""CLIP search over the demo library: encoders (open_clip, weights resolved offline), a domain CLIP
trainer, an embedding index (exact / faiss IVF / HNSW) and episode search. See notes/retrieval.md.
Names load on first use (robot_irl.core.lazy): importing the CLI does not load torch."""
from robot_irl.core.lazy import lazy_exports

_EXPORTS = {
    "CaptionFacts": "captions", "captions": "captions",
    "ClipEncoder": "encoders", "load_encoder": "encoders", "read_image": "encoders",
    "EmbeddingIndex": "index", "ModelMismatchError": "index",
    "example_queries": "library_clip", "train_library_clip": "library_clip",
    "EpisodeHit": "search", "Searcher": "search", "search_vector": "search",
    "contact_sheet": "sheet", "write_contact_sheet": "sheet",
    "TrainConfig": "train", "TrainResult": "train", "train_clip": "train",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
