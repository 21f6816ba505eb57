"""Object detection with a YOLO-style single-stage grid detector: box utilities (formats,
IoU, GIoU), anchors (k-means), target assignment, the detector and its loss, decoding,
class-wise hard and soft non-maximum suppression, COCO-style evaluation (mAP@0.5,
mAP@[.5:.95], per-class AP, precision-recall curves), seeded digit scenes and drawing."""

from . import anchors, assign, boxes, decode, evaluate, model, nms, scenes, train
from .anchors import kmeans_anchors
from .assign import GridTargets, assign_targets
from .boxes import area, convert, giou, iou
from .decode import postprocess
from .evaluate import DetectionMetrics
from .evaluate import evaluate as evaluate_detections
from .model import GridHead, find_head, grid_detector
from .nms import batched_nms, soft_nms
from .scenes import digit_patches, held_out_scenes, make_scenes
from .train import GridDetectionLoss, detect, fit_detector, pretrain_backbone

__all__ = ["anchors", "assign", "boxes", "decode", "evaluate", "model", "nms", "scenes",
           "train", "kmeans_anchors", "GridTargets", "assign_targets", "area", "convert",
           "giou", "iou", "postprocess", "DetectionMetrics", "evaluate_detections", "GridHead",
           "find_head", "grid_detector", "batched_nms", "soft_nms", "held_out_scenes",
           "make_scenes", "digit_patches", "GridDetectionLoss", "detect", "fit_detector",
           "pretrain_backbone"]
