"""Clients for a generator served by TensorFlow Serving (see ``export/README.md``).

:class:`RestClient` speaks TF Serving's REST API (port 8501) with the standard library only;
:class:`GrpcClient` speaks its gRPC API (port 8500) through ``tensorflow-serving-api``. Both
take and return ``{input or output name: array}`` dicts, so code can switch between them::

    client = RestClient("http://localhost:8501", "stylegan")
    images = client.predict({"seeds": [1, 2], "truncation_psi": [0.7, 0.7]},
                            signature_name="generate_from_seeds")["images"]  # [2, H, W, 3] uint8

Outputs come back in the dtypes the model's metadata declares (JSON has none), fetched once per
client. The signatures and their inputs are listed in :mod:`tf_stylegan.deploy.signatures`.
"""

import base64
import collections
import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
REST_FORMATS = ("inputs", "instances")  # TF Serving's columnar and row request formats

# TensorFlow DataType enum names (as TF Serving's metadata gives them) -> NumPy dtypes.
NUMPY_DTYPES = {
    "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_HALF": np.float16,
    "DT_INT8": np.int8, "DT_INT16": np.int16, "DT_INT32": np.int32, "DT_INT64": np.int64,
    "DT_UINT8": np.uint8, "DT_UINT16": np.uint16, "DT_UINT32": np.uint32, "DT_UINT64": np.uint64,
    "DT_BOOL": np.bool_, "DT_STRING": np.object_,
}

Signature = collections.namedtuple("Signature", "inputs outputs")  # each {name: TensorInfo}
TensorInfo = collections.namedtuple("TensorInfo", "dtype shape")  # NumPy dtype, tuple (None: any size)


class ServingError(RuntimeError):
    """A request the server refused or could not answer.

    ``code`` is the HTTP status for REST (None when the server was not reached) or the
    ``grpc.StatusCode`` for gRPC; ``message`` is the server's own message.
    """

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def signatures_from_metadata(metadata):
    """{signature name: :class:`Signature`} from TF Serving's model metadata (REST JSON layout);
    internal entries such as ``__saved_model_init_op`` are left out."""
    signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
    return {name: Signature(_tensor_infos(definition.get("inputs", {})),
                            _tensor_infos(definition.get("outputs", {})))
            for name, definition in signature_defs.items() if not name.startswith("__")}


def _tensor_infos(infos):
    return {name: TensorInfo(np.dtype(NUMPY_DTYPES.get(info["dtype"], np.object_)),
                             tuple(None if int(dim["size"]) < 0 else int(dim["size"])
                                   for dim in info.get("tensor_shape", {}).get("dim", [])))
            for name, info in infos.items()}


class _Client:
    """What both clients share: the model's address, and its signatures from the subclass's
    ``metadata()``, fetched once."""

    def __init__(self, model_name, version, timeout):
        self.model_name = model_name
        self.version = None if version is None else int(version)  # None: the latest version
        self.timeout = timeout  # seconds per request
        self._signatures = None

    def signatures(self):
        """{signature name: :class:`Signature`} of the served model (one metadata request, cached)."""
        if self._signatures is None:
            self._signatures = signatures_from_metadata(self.metadata())
        return self._signatures


class RestClient(_Client):
    """TF Serving's REST API: ``base_url`` like ``http://localhost:8501``."""

    def __init__(self, base_url, model_name, version=None, timeout=60.0):
        super().__init__(model_name, version, timeout)
        self.base_url = base_url.rstrip("/")

    @property
    def model_url(self):
        """``BASE/v1/models/NAME[/versions/N]``."""
        url = f"{self.base_url}/v1/models/{urllib.parse.quote(self.model_name, safe='')}"
        return url if self.version is None else f"{url}/versions/{self.version}"

    def predict(self, inputs, signature_name=DEFAULT_SIGNATURE, format="inputs"):
        """{input: array-like} -> {output: array}, sent in the columnar (``inputs``) or row
        (``instances``) format; both give the same arrays."""
        columns = {name: np.asarray(value) for name, value in inputs.items()}
        if format == "inputs":
            body = {"signature_name": signature_name,
                    "inputs": {name: value.tolist() for name, value in columns.items()}}
        elif format == "instances":
            body = {"signature_name": signature_name, "instances": _rows(columns)}
        else:
            raise ValueError(f"format must be one of {REST_FORMATS}, got {format!r}")
        response = self._request(f"{self.model_url}:predict", body)
        outputs = self.signatures()[signature_name].outputs
        if format == "inputs":
            return _from_columns(response["outputs"], outputs)
        return _from_rows(response["predictions"], outputs)

    def status(self):
        """TF Serving's model status: ``{"model_version_status": [{"version", "state", "status"}]}``."""
        return self._request(self.model_url)

    def metadata(self):
        """TF Serving's model metadata: ``{"model_spec": ..., "metadata": {"signature_def": ...}}``."""
        return self._request(f"{self.model_url}/metadata")

    def _request(self, url, body=None):
        """GET (or POST ``body`` as JSON) -> the decoded JSON response; errors as :class:`ServingError`."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as error:
            raise ServingError(error.code, _error_message(error.read())) from None
        except OSError as error:  # connection refused, timeout, reset
            raise ServingError(None, f"{url}: {getattr(error, 'reason', error)}") from None
        try:
            return json.loads(text)
        except ValueError:
            raise ServingError(200, f"{url} answered with something other than JSON: "
                                    f"{text[:200]!r}") from None


def _error_message(body):
    """The ``error`` field of a TF Serving error body (or the body itself if it has none)."""
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", errors="replace")


def _rows(columns):
    """{input: [N, ...] array} -> N objects ``{input: row}`` (TF Serving's ``instances``)."""
    sizes = {name: len(value) if value.ndim else None for name, value in columns.items()}
    if len(set(sizes.values())) != 1 or None in sizes.values():
        raise ValueError(f"the row format needs every input batched with one size, got {sizes}")
    lists = {name: value.tolist() for name, value in columns.items()}
    return [{name: rows[index] for name, rows in lists.items()}
            for index in range(next(iter(sizes.values())))]


def _array(value, dtype):
    """JSON values -> an array; strings come back as bytes (``{"b64": ...}`` decoded)."""
    if dtype != np.object_:
        return np.asarray(value, dtype=dtype)

    def decode(item):
        if isinstance(item, list):
            return [decode(element) for element in item]
        return base64.b64decode(item["b64"]) if isinstance(item, dict) else str(item).encode("utf-8")

    return np.array(decode(value), dtype=object)


def _from_columns(outputs, infos):
    """Decodes ``"outputs"``: the bare value of a single-output signature, else {name: value}."""
    if len(infos) == 1:
        outputs = {next(iter(infos)): outputs}
    return {name: _array(value, infos[name].dtype) for name, value in outputs.items()}


def _from_rows(predictions, infos):
    """Decodes ``"predictions"``: a list of values for a single output, else a list of {name: value}."""
    if len(infos) == 1:
        (name, info), = infos.items()
        return {name: _array(predictions, info.dtype)}
    return {name: _array([row[name] for row in predictions], info.dtype) for name, info in infos.items()}


class GrpcClient(_Client):
    """TF Serving's gRPC API: ``target`` like ``localhost:8500``. Needs ``grpcio`` and
    ``tensorflow-serving-api``; ``close()`` it, or use it in a ``with`` block."""

    def __init__(self, target, model_name, version=None, timeout=60.0):
        # Imported here so that RestClient needs only the standard library and NumPy.
        import grpc
        try:
            from tensorflow_serving.apis import (
                model_service_pb2_grpc,
                prediction_service_pb2_grpc,
            )
        except ImportError:
            raise ImportError("GrpcClient needs tensorflow-serving-api, installed without its dependencies "
                              "(which would add a second TensorFlow): "
                              "pip install --no-deps tensorflow-serving-api==2.21.0") from None

        super().__init__(model_name, version, timeout)
        self.target = target
        # Unlimited messages: gRPC's default 4 MB cap is below one 1024x1024 image in a response.
        self._channel = grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1),
                                                               ("grpc.max_receive_message_length", -1)])
        self._predictions = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def predict(self, inputs, signature_name=DEFAULT_SIGNATURE):
        """{input: array-like} -> {output: array}. Python numbers and arrays of the same kind are
        cast to the signature's dtypes (float64 -> float32, int64 -> int32 when the values fit),
        as the REST API does with JSON; anything else is sent as it is, for the server to judge."""
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._fill_model_spec(request.model_spec)
        request.model_spec.signature_name = signature_name
        signature = self.signatures().get(signature_name)  # unknown: the server says so
        for name, value in inputs.items():
            array = np.asarray(value)
            if signature is not None and name in signature.inputs:
                array = _cast_to(array, signature.inputs[name].dtype)
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        response = self._call(self._predictions.Predict, request)
        return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}

    def status(self):
        """The model status, in the same layout as :meth:`RestClient.status`."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._fill_model_spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        return json_format.MessageToDict(response, always_print_fields_with_no_presence=True)

    def metadata(self):
        """The model metadata (signature_def), in the same layout as :meth:`RestClient.metadata`."""
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._fill_model_spec(request.model_spec)
        response = self._call(self._predictions.GetModelMetadata, request)
        signature_defs = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_defs)

        def as_dict(message):  # the options of TF Serving's REST metadata JSON
            return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                             always_print_fields_with_no_presence=True)

        return {"model_spec": as_dict(response.model_spec),
                "metadata": {"signature_def": as_dict(signature_defs)}}

    def close(self):
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _fill_model_spec(self, model_spec):
        model_spec.name = self.model_name
        if self.version is not None:
            model_spec.version.value = self.version

    def _call(self, rpc, request):
        import grpc

        try:
            return rpc(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise ServingError(error.code(), error.details()) from None


def _cast_to(array, dtype):
    """``array`` as ``dtype`` when both are numeric and the cast keeps the values (floats are
    only rounded, never turned into integers); otherwise ``array`` unchanged."""
    if (array.dtype.kind not in "iuf" or dtype.kind not in "iuf"
            or (array.dtype.kind == "f" and dtype.kind != "f")):
        return array
    cast = array.astype(dtype)
    return cast if dtype.kind == "f" or np.array_equal(cast, array) else array
