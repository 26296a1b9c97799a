"""In-process stand-ins for TensorFlow Serving (whose server binary needs Docker): a REST and a
gRPC server that implement TF Serving's documented request and response formats around an
exported SavedModel folder, for testing :mod:`tf_stylegan.deploy.serving` end to end.

What they follow from TF Serving (``http_rest_api_handler.cc``, ``predict_util.cc``,
``json_tensor.cc``): the URL layout; the ``instances`` (row) and ``inputs`` (columnar) request
forms and the ``predictions`` / ``outputs`` answers (a single output is given bare, several as
objects); JSON numbers converted to the signature's dtypes, while gRPC tensors must have them
exactly; only the highest version served; errors as ``{"error": message}`` with TF Serving's
status codes (INVALID_ARGUMENT and FAILED_PRECONDITION -> HTTP 400, NOT_FOUND -> 404). Every
request is checked against the signature before the function runs, so a bad request is an
error response and the server keeps serving.

    with RestServer([ServedModel(out_dir / "stylegan")]) as rest:
        RestClient(rest.url, "stylegan").predict(...)
"""

import base64
import json
import os
import re
import threading
import urllib.parse
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

DEFAULT_SIGNATURE = "serving_default"
STATUS_BY_CODE = {code.value[0]: code for code in grpc.StatusCode}  # TF error_code -> grpc.StatusCode
# TF Serving's ToHTTPStatusCode, for the codes these servers produce; anything else is 500.
HTTP_STATUS = {grpc.StatusCode.INVALID_ARGUMENT: 400, grpc.StatusCode.FAILED_PRECONDITION: 400,
               grpc.StatusCode.OUT_OF_RANGE: 400, grpc.StatusCode.NOT_FOUND: 404,
               grpc.StatusCode.UNIMPLEMENTED: 501, grpc.StatusCode.RESOURCE_EXHAUSTED: 429}
PREDICT_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict", re.I)
STATUS_PATH = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?"
                         r"(?P<metadata>/metadata)?", re.I)


class RequestError(Exception):
    """A refused request: a ``grpc.StatusCode`` and TF Serving-like message."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self):
        return HTTP_STATUS.get(self.code, 500)


def invalid(message):
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


class ServedModel:
    """The highest version under ``model_dir`` (``out_dir/name``; TF Serving's default version
    policy), loaded once and shared by any number of servers."""

    def __init__(self, model_dir, name=None):
        versions = sorted(int(entry) for entry in os.listdir(model_dir) if entry.isdigit())
        if not versions:
            raise FileNotFoundError(f"no numeric version folder in {model_dir}")
        self.name = name or os.path.basename(os.path.normpath(model_dir))
        self.version = versions[-1]
        path = os.path.join(model_dir, str(self.version))
        self._loaded = tf.saved_model.load(path)
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(path, "saved_model.pb"), "rb") as file:
            saved_model.ParseFromString(file.read())
        self.signature_defs = get_model_metadata_pb2.SignatureDefMap()  # as TF Serving's metadata gives it
        for key, signature_def in saved_model.meta_graphs[0].signature_def.items():
            self.signature_defs.signature_def[key].CopyFrom(signature_def)

    def input_specs(self, signature_name):
        """{input: tf.TensorSpec} of a signature, or None if the model has no such signature."""
        function = self._loaded.signatures.get(signature_name)
        return None if function is None else function.structured_input_signature[1]

    def run(self, signature_name, inputs):
        """{input: array of the signature's dtype} -> {output: array}, after checking the names
        and shapes against the signature (the caller has checked that it exists)."""
        specs = self.input_specs(signature_name)
        extra, missing = sorted(set(inputs) - set(specs)), sorted(set(specs) - set(inputs))
        if extra or missing:
            raise invalid(f"input size does not match signature: {len(inputs)}!={len(specs)} "
                          f"len({sorted(inputs)}) != len({sorted(specs)}). Sent extra: {extra}. "
                          f"Missing but required: {missing}.")
        for name, spec in specs.items():
            if inputs[name].dtype != spec.dtype.as_numpy_dtype:
                raise invalid(f"input '{name}': expects {spec.dtype.name} "
                              f"but {inputs[name].dtype} is provided")
            if not spec.shape.is_compatible_with(inputs[name].shape):
                raise invalid(f"input '{name}': shape {list(inputs[name].shape)} does not match the "
                              f"signature's {spec.shape} (None: any size)")
        try:
            function = self._loaded.signatures[signature_name]
            outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        except tf.errors.OpError as error:  # e.g. inputs of different batch sizes
            raise RequestError(STATUS_BY_CODE.get(error.error_code, grpc.StatusCode.UNKNOWN),
                               error.message) from None
        return {name: value.numpy() for name, value in outputs.items()}

    def status_response(self):
        """GetModelStatusResponse: this version AVAILABLE, status OK."""
        response = get_model_status_pb2.GetModelStatusResponse()
        status = response.model_version_status.add(version=self.version,
                                                   state=get_model_status_pb2.ModelVersionStatus.AVAILABLE)
        status.status.SetInParent()  # error_code OK, error_message ""
        return response

    def metadata_response(self):
        """GetModelMetadataResponse with the ``signature_def`` entry."""
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.name
        response.model_spec.version.value = self.version
        response.metadata["signature_def"].Pack(self.signature_defs)
        return response


class _Models:
    """The models a server answers for, found as TF Serving finds servables."""

    def __init__(self, models):
        self._by_name = {model.name: model for model in models}

    def find(self, name, version=None):
        model = self._by_name.get(name)
        if model is None or version not in (None, model.version):
            request = f"Latest({name})" if version is None else f"Specific({name}, {version})"
            raise RequestError(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}")
        return model


# --- REST ---------------------------------------------------------------------------------------

class RestServer:
    """TF Serving's REST API on ``http://127.0.0.1:PORT`` (``url`` once started)."""

    def __init__(self, models):
        self.models = _Models(models)
        self.url = None
        self._httpd = self._thread = None

    def start(self):
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RestHandler)
        self._httpd.daemon_threads = True
        self._httpd.models = self.models
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rest-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class _RestHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        self._answer(self._get)

    def do_POST(self):
        self._answer(self._post)

    def log_message(self, format, *args):  # quiet: tests read the responses, not a log
        pass

    def _answer(self, handle):
        try:
            status, body = 200, handle(urllib.parse.urlsplit(self.path).path)
        except RequestError as error:
            status, body = error.http_status, {"error": error.message}
        except Exception as error:  # a bug here must still answer, and the server keep serving
            status, body = 500, {"error": f"internal error: {error!r}"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _match(self, pattern, path):
        match = pattern.fullmatch(path)
        if match is None:
            raise invalid(f"Malformed request: {self.command} {path}")
        version = match["version"]
        return match, self.server.models.find(urllib.parse.unquote(match["name"]),
                                              None if version is None else int(version))

    def _get(self, path):
        match, model = self._match(STATUS_PATH, path)
        if match["metadata"]:  # TF Serving's layout: each part printed on its own, Any unpacked
            def as_dict(message):
                return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                                 always_print_fields_with_no_presence=True)
            response = model.metadata_response()
            return {"model_spec": as_dict(response.model_spec),
                    "metadata": {"signature_def": as_dict(model.signature_defs)}}
        return json_format.MessageToDict(model.status_response(), always_print_fields_with_no_presence=True)

    def _post(self, path):
        _, model = self._match(PREDICT_PATH, path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            request = json.loads(body)
        except ValueError as error:  # also invalid UTF-8
            raise invalid(f"JSON Parse error: {error}") from None
        if not isinstance(request, dict):
            raise invalid("JSON Value: the request body must be an object")
        row_format = "instances" in request
        if row_format == ("inputs" in request):
            raise invalid("Missing 'inputs' or 'instances' key" if not row_format
                          else "Not allowed to mix 'inputs' and 'instances' key")
        signature_name = request.get("signature_name", DEFAULT_SIGNATURE)
        specs = model.input_specs(signature_name) if isinstance(signature_name, str) else None
        if specs is None:
            raise invalid(f'Serving signature name: "{signature_name}" not found in signature def')
        columns = _instances_to_columns(request["instances"], specs) if row_format \
            else _inputs_to_columns(request["inputs"], specs)
        outputs = model.run(signature_name, {name: _array_from_json(name, value, specs.get(name))
                                             for name, value in columns.items()})
        return _json_response(outputs, row_format)


def _inputs_to_columns(inputs, specs):
    """Columnar ``inputs``: an object {input: value}, or the bare value of a single input."""
    if isinstance(inputs, dict):
        return inputs
    if len(specs) == 1:
        return {next(iter(specs)): inputs}
    raise invalid(f"'inputs' must be an object naming the signature's {len(specs)} inputs {sorted(specs)}")


def _instances_to_columns(instances, specs):
    """Row ``instances``: a list of objects {input: row}, or of bare rows for a single input."""
    if not isinstance(instances, list) or not instances:
        raise invalid("'instances' must be a non-empty list")
    named = [isinstance(row, dict) for row in instances]
    if all(named):
        names = set(instances[0])
        for index, row in enumerate(instances):
            if set(row) != names:
                raise invalid(f"instances[{index}] has the inputs {sorted(row)}, "
                              f"instances[0] {sorted(names)}")
        return {name: [row[name] for row in instances] for name in names}
    if not any(named) and len(specs) == 1:
        return {next(iter(specs)): instances}
    raise invalid(f"'instances' must be objects naming the signature's inputs {sorted(specs)}")


def _array_from_json(name, value, spec):
    """A JSON value in the dtype of ``spec``: integers for integer inputs, any number for float
    inputs, values that fit. Returned unconverted for an input the signature lacks (run() refuses it)."""
    try:
        array = np.asarray(value)
    except ValueError as error:  # ragged nested lists
        raise invalid(f"input '{name}': {error}") from None
    if spec is None:
        return array
    dtype = np.dtype(spec.dtype.as_numpy_dtype)
    accepted = {"f": "iuf", "i": "iu", "u": "iu"}.get(dtype.kind, dtype.kind)
    if array.size and array.dtype.kind not in accepted:
        raise invalid(f"input '{name}': JSON values of kind {array.dtype.name} "
                      f"where {spec.dtype.name} is expected")
    converted = array.astype(dtype)
    if dtype.kind in "iu" and not np.array_equal(converted, array):
        raise invalid(f"input '{name}': values out of the range of {spec.dtype.name}")
    return converted


def _json_values(name, value):
    """An output as JSON values; strings as TF Serving writes them: ``{"b64": ...}`` when the output's
    name ends in ``_bytes``, else as UTF-8 text."""
    if value.dtype != object:
        return value.tolist()
    if name.endswith("_bytes"):
        encode = lambda item: {"b64": base64.b64encode(item).decode("ascii")}
    else:
        encode = lambda item: item.decode("utf-8")
    return np.vectorize(encode, otypes=[object])(value).tolist() if value.size else value.tolist()


def _json_response(outputs, row_format):
    """TF Serving's answer: ``predictions`` (per row) or ``outputs`` (per output); a single output
    without its name."""
    outputs = {name: _JsonReady(_json_values(name, value), len(value)) for name, value in outputs.items()}
    if row_format:
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).values}
        sizes = {value.size for value in outputs.values()}
        if len(sizes) != 1:
            raise invalid(f"outputs of different batch sizes {sorted(sizes)} cannot be given as rows")
        return {"predictions": [{name: value.values[index] for name, value in outputs.items()}
                                for index in range(sizes.pop())]}
    if len(outputs) == 1:
        return {"outputs": next(iter(outputs.values())).values}
    return {"outputs": {name: value.values for name, value in outputs.items()}}


class _JsonReady:
    """An output's JSON values and its batch size."""

    def __init__(self, values, size):
        self.values, self.size = values, size


# --- gRPC ---------------------------------------------------------------------------------------

class GrpcServer:
    """TF Serving's PredictionService (Predict, GetModelMetadata) and ModelService
    (GetModelStatus) on ``127.0.0.1:PORT`` (``target`` once started)."""

    def __init__(self, models, max_workers=4):
        self.models = _Models(models)
        self.max_workers = max_workers
        self.target = None
        self._server = None

    def start(self):
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=self.max_workers))
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionServicer(self.models),
                                                                            self._server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(_ModelServicer(self.models), self._server)
        self.target = f"127.0.0.1:{self._server.add_insecure_port('127.0.0.1:0')}"
        self._server.start()
        return self

    def stop(self):
        self._server.stop(grace=None).wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


def _find(models, model_spec):
    return models.find(model_spec.name, model_spec.version.value if model_spec.HasField("version") else None)


def _answer(context, handle, request):
    """``handle(request)``, with a RequestError turned into the call's status."""
    try:
        return handle(request)
    except RequestError as error:
        context.abort(error.code, error.message)


class _PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, models):
        self.models = models

    def Predict(self, request, context):
        return _answer(context, self._predict, request)

    def GetModelMetadata(self, request, context):
        return _answer(context, self._metadata, request)

    def _predict(self, request):
        model = _find(self.models, request.model_spec)
        signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if model.input_specs(signature_name) is None:
            raise RequestError(grpc.StatusCode.FAILED_PRECONDITION,
                               f'Serving signature key "{signature_name}" not found.')
        inputs = {}
        for name, proto in request.inputs.items():
            try:
                inputs[name] = tf.make_ndarray(proto)
            except (TypeError, ValueError) as error:
                raise invalid(f"input '{name}': not a valid tensor: {error}") from None
        outputs = model.run(signature_name, inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        response.model_spec.signature_name = signature_name
        response.model_spec.version.value = model.version
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value))
        return response

    def _metadata(self, request):
        model = _find(self.models, request.model_spec)
        if not request.metadata_field:
            raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
        unsupported = sorted(set(request.metadata_field) - {"signature_def"})
        if unsupported:
            raise invalid(f"Metadata field {unsupported[0]} is not supported")
        return model.metadata_response()


class _ModelServicer(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, models):
        self.models = models

    def GetModelStatus(self, request, context):
        return _answer(context, lambda request: _find(self.models, request.model_spec).status_response(),
                       request)
