"""CLIP search over the demo library: encoders (open_clip, weights resolved offline), a domain CLIP
trainer, an embedding index (exact / faiss IVF / HNSW) and episode search. See notes/retrieval.md."""
from robot_irl.retrieval.captions import CaptionFacts, captions
from robot_irl.retrieval.encoders import ClipEncoder, load_encoder, read_image
from robot_irl.retrieval.index import EmbeddingIndex, ModelMismatchError
from robot_irl.retrieval.library_clip import example_queries, train_library_clip
from robot_irl.retrieval.search import EpisodeHit, Searcher, search_vector
from robot_irl.retrieval.sheet import contact_sheet, write_contact_sheet
from robot_irl.retrieval.train import TrainConfig, TrainResult, train_clip

__all__ = ["CaptionFacts", "ClipEncoder", "EmbeddingIndex", "EpisodeHit", "ModelMismatchError", "Searcher",
           "TrainConfig", "TrainResult", "captions", "contact_sheet", "example_queries", "load_encoder", "read_image",
           "search_vector", "train_clip", "train_library_clip", "write_contact_sheet"]
