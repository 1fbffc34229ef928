//! In-process inference with tract-onnx: cached plans per input shape and a batching runner
//! thread (issue 2 item 4).

pub mod attention;
pub mod dense;
pub mod elementwise;
pub mod gemm;
pub mod patch_embed;
pub mod plans;
pub mod runner;
pub mod softmax;
pub mod spin_pool;
