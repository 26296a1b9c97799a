"""``export``: the moving-average generator -> SavedModel (TF Serving layout), optionally TFLite."""

import os
import sys

from tf_stylegan.cli.common import add_command, fail


def export(args):
    """The moving-average generator -> SavedModel (TF Serving layout), optionally TFLite."""
    from tf_stylegan.deploy import export as export_lib
    from tf_stylegan.deploy.inference import LoadError, keras_generator
    from tf_stylegan.nn import precision

    try:
        generator = keras_generator(args.model)
    except LoadError as error:
        return fail(str(error))
    if float(generator.lod.numpy()) != 0:
        print(f"warning: {args.model} is still growing (lod {float(generator.lod.numpy()):g}): the export "
              "produces its current, blended output", file=sys.stderr)
    if args.dtype != "float32":
        if args.tflite or args.quantize:
            return fail(f"--dtype {args.dtype} exports a SavedModel for GPU serving; for a float16 TFLite "
                        "model use --quantize float16 (with the default --dtype float32)")
        generator = export_lib.generator_copy(generator, precision.policy_name(args.dtype))
    module = export_lib.GeneratorModule(generator)  # traced once: for the export, its check and TFLite's
    try:
        path = export_lib.export_saved_model(module, args.out, name=args.name, version=args.version)
    except export_lib.ExportError as error:
        return fail(str(error))
    print(f"  SavedModel: {export_lib.folder_bytes(path) / 1e6:.1f} MB")
    if args.tflite or args.quantize:
        suffix = f"_{args.quantize}" if args.quantize else ""
        tflite_path = os.path.join(args.out, f"{args.name}_{os.path.basename(path)}{suffix}.tflite")
        try:
            export_lib.export_tflite(path, tflite_path, quantize=args.quantize)
            differences = export_lib.verify_tflite(module, tflite_path,
                                                   float_atol=None if args.quantize else 1e-3)
        except Exception as error:  # converter errors, ExportError of the check
            if os.path.exists(tflite_path):
                os.remove(tflite_path)
            return fail(f"TFLite export failed (the SavedModel {path} is fine): {error}")
        latency = export_lib.tflite_latency(tflite_path, generator.latent_size,
                                            label_size=generator.label_size)
        print(f"exported {tflite_path}: {os.path.getsize(tflite_path) / 1e6:.1f} MB, "
              f"{latency * 1000:.1f} ms per image (batch 1), "
              f"signatures {', '.join(export_lib.TFLITE_SIGNATURES)}")
        print("  max |difference| from Keras (uint8 images in levels): " + "; ".join(
            f"{name} " + ", ".join(f"{key} {value:.2g}" for key, value in outputs.items())
            for name, outputs in differences.items()))
    return 0


def add_parsers(commands):
    parser = add_command(
        commands, "export", "export the moving-average generator (SavedModel for TF Serving, TFLite)", [
            ("tf-stylegan export runs/emoji --out exported", "exported/stylegan/1/ (TF Serving layout)"),
            ("tf-stylegan export ffhq-1024 --out exported --tflite",
             "+ exported/stylegan_2.tflite (float32)"),
            ("tf-stylegan export ffhq-1024 --out exported --quantize float16", "or dynamic"),
            ("tf-stylegan export ffhq-1024 --out exported --dtype float16",
             "a SavedModel computing in float16"),
        ])
    parser.add_argument("model", help="training run directory, network snapshot or official .pkl")
    parser.add_argument("--out", required=True, help="export folder; the model goes to OUT/NAME/VERSION")
    parser.add_argument("--name", default="stylegan", help="model name (TF Serving's model folder)")
    parser.add_argument("--version", type=int, help="version number (default: the next free one)")
    parser.add_argument("--tflite", action="store_true", help="also write a float32 TFLite model")
    parser.add_argument("--quantize", choices=("float16", "dynamic"),
                        help="write a quantized TFLite model instead (implies --tflite)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                        help="the SavedModel computes in this type (float16: for GPUs; the mapping "
                             "network and normalisation statistics stay float32; inputs and outputs "
                             "are float32 / uint8 either way)")
    parser.set_defaults(run=export)
