//! clipgate: a drop-in Weaviate gateway that emulates the multi2vec-clip module.
