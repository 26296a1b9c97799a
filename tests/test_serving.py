"""tf_stylegan.deploy.serving against in-process servers that speak TF Serving's REST and gRPC formats
(tests/serving_servers.py) around a real export: round trips of every kind of signature,
status and metadata, and TF Serving's error responses for bad requests."""

import base64
import io
import json
import socket
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from helpers import latents, perturb, small_generator
from PIL import Image
from serving_servers import GrpcServer, RestServer, ServedModel

from tf_stylegan.deploy.export import export_saved_model
from tf_stylegan.deploy.serving import GrpcClient, RestClient, ServingError, TensorInfo
from tf_stylegan.deploy.signatures import GeneratorModule

LATENT = 32
NAME = "stylegan"


@pytest.fixture(scope="module")
def generator():
    # Noise strengths start at 0, which would hide the noise inputs; w_avg starts at 0, which
    # would make truncation a plain scaling.
    return perturb(small_generator(16, latent=LATENT, seed=1), seed=1, scale=0.5, names=("strength",),
                   w_avg_scale=1.0)


@pytest.fixture(scope="module")
def module(generator):
    """The in-process reference: the same functions the SavedModel holds."""
    return GeneratorModule(generator)


@pytest.fixture(scope="module")
def served(generator, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("exported")
    export_saved_model(generator, str(out_dir), name=NAME, verify=False, print_fn=None)
    return ServedModel(out_dir / NAME)


@pytest.fixture(scope="module")
def rest_server(served):
    with RestServer([served]) as server:
        yield server


@pytest.fixture(scope="module")
def grpc_server(served):
    with GrpcServer([served]) as server:
        yield server


@pytest.fixture(scope="module")
def rest(rest_server):
    return RestClient(rest_server.url, NAME)


@pytest.fixture(scope="module")
def grpc_client(grpc_server):
    with GrpcClient(grpc_server.target, NAME) as client:
        yield client


@pytest.fixture(params=["rest-inputs", "rest-instances", "grpc"])
def predict(request, rest, grpc_client):
    """predict(inputs, signature_name) through each transport and REST request format."""
    if request.param == "grpc":
        return grpc_client.predict
    format = request.param.split("-")[1]
    return lambda inputs, signature_name="serving_default": rest.predict(inputs, signature_name,
                                                                         format=format)


def _z(batch, seed):
    return latents(batch, seed, size=LATENT)


def _assert_same(expected, actual):
    assert set(actual) == set(expected)
    for name, want in expected.items():
        want = np.asarray(want)
        assert actual[name].dtype == want.dtype, name
        assert actual[name].shape == want.shape, name
        if want.dtype == np.uint8:
            np.testing.assert_array_equal(actual[name], want, err_msg=name)
        else:
            np.testing.assert_allclose(actual[name], want, atol=1e-5, err_msg=name)


def _reference(module, signature_name, inputs):
    return {name: value.numpy() for name, value in getattr(module, signature_name)(**inputs).items()}


# --- round trips ----------------------------------------------------------------------------

def test_serving_default_matches_in_process(predict, module):
    inputs = {"z": _z(3, 0), "truncation_psi": np.array([1.0, 0.7, 0.0], np.float32)}
    result = predict(inputs)
    _assert_same(_reference(module, "serving_default", inputs), result)
    assert result["images"].shape == (3, 16, 16, 3)
    assert len({image.tobytes() for image in result["images"]}) == 3


def test_generate_from_seeds_is_reproducible(predict, module):
    psi = np.full(2, 0.7, np.float32)
    seeds = np.array([1, 2], np.int64)
    images = predict({"seeds": seeds, "truncation_psi": psi}, "generate_from_seeds")["images"]
    np.testing.assert_array_equal(images, module.generate_from_seeds(seeds, psi)["images"].numpy())
    # Plain Python lists as in export/README.md's curl example; the same seeds, the same pictures.
    again = predict({"seeds": [1, 2], "truncation_psi": [0.7, 0.7]}, "generate_from_seeds")["images"]
    np.testing.assert_array_equal(again, images)
    other = predict({"seeds": [3, 4], "truncation_psi": [0.7, 0.7]}, "generate_from_seeds")["images"]
    assert not np.array_equal(other[0], images[0]) and not np.array_equal(other[1], images[1])


def test_generate_png_sends_png_files(predict, module, rest_server):
    psi = np.full(3, 0.7, np.float32)
    seeds = np.array([1, 2, 5], np.int64)
    png = predict({"seeds": seeds, "truncation_psi": psi}, "generate_png")["png_bytes"]
    assert png.shape == (3,) and all(item.startswith(b"\x89PNG") for item in png)
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(item))) for item in png])
    np.testing.assert_array_equal(decoded, module.generate_from_seeds(seeds, psi)["images"].numpy())
    # On the wire (REST): {"b64": ...} objects, as TF Serving sends outputs named *_bytes.
    body = json.dumps({"signature_name": "generate_png", "inputs": {"seeds": [1], "truncation_psi": [0.7]}})
    request = urllib.request.Request(f"{rest_server.url}/v1/models/{NAME}:predict", data=body.encode())
    with urllib.request.urlopen(request) as response:
        answer = json.loads(response.read())
    assert set(answer["outputs"][0]) == {"b64"}
    assert base64.b64decode(answer["outputs"][0]["b64"]) == png[0]


def test_mapping_then_synthesis_with_noise(predict, module):
    z, psi = _z(2, 1), np.array([0.5, 1.0], np.float32)
    mapped = predict({"z": z, "truncation_psi": psi}, "mapping")
    _assert_same(_reference(module, "mapping", {"z": z, "truncation_psi": psi}), mapped)
    inputs = {"dlatents": mapped["dlatents"], "noise_seeds": np.array([-1, 5], np.int64),
              "noise_scale": np.ones((2, module.num_layers), np.float32)}
    result = predict(inputs, "synthesis")  # two outputs: the row format answers with objects
    _assert_same(_reference(module, "synthesis", inputs), result)
    stored = predict({"dlatents": mapped["dlatents"]}, "synthesis_stored_noise")
    np.testing.assert_array_equal(stored["images"][0], result["images"][0])  # seed -1: the stored noise
    assert not np.array_equal(stored["images"][1], result["images"][1])


def test_a_projection_is_served_from_its_dlatents_and_noise_maps(predict, module, generator):
    """Projection offline (tf-stylegan project), serving online: synthesis_with_noise takes the saved
    dlatents and flattened noise maps and gives the projected image of the Keras generator."""
    from tf_stylegan.projection import Projector, Schedule, pixel_distance

    target = np.full((1, 16, 16, 3), 200, np.uint8)
    projected = Projector(generator, pixel_distance(), Schedule(num_steps=5), w_samples=100).project(target)
    inputs = {"dlatents": projected.dlatents, "noise": projected.noise}
    served = predict(inputs, "synthesis_with_noise")
    _assert_same(_reference(module, "synthesis_with_noise", inputs), served)
    assert np.abs(served["images"].astype(int) - projected.images.astype(int)).max() <= 1


def test_style_mix(predict, module):
    inputs = {"z_a": _z(2, 2), "z_b": _z(2, 3), "crossover": np.array([1, 4], np.int32),
              "truncation_psi": np.ones(2, np.float32)}
    _assert_same(_reference(module, "style_mix", inputs), predict(inputs, "style_mix"))


def test_rest_and_grpc_give_the_same_images(rest, grpc_client):
    inputs = {"seeds": [7, 8, 9], "truncation_psi": [1.0, 0.7, 0.5]}
    np.testing.assert_array_equal(rest.predict(inputs, "generate_from_seeds")["images"],
                                  grpc_client.predict(inputs, "generate_from_seeds")["images"])


def test_rest_response_layouts_follow_tf_serving(rest_server, module):
    """A single output is given without its name, several as objects (per row or per output)."""
    url = f"{rest_server.url}/v1/models/{NAME}:predict"
    z = _z(2, 4).tolist()
    columns = _post(url, {"inputs": {"z": z, "truncation_psi": [1, 1]}})  # no signature_name: default
    assert np.asarray(columns["outputs"]).shape == (2, 16, 16, 3)
    rows = _post(url, {"instances": [{"z": row, "truncation_psi": 1} for row in z]})
    assert np.asarray(rows["predictions"]).shape == (2, 16, 16, 3)
    dlatents = np.zeros((2, module.num_layers, LATENT)).tolist()
    # A single-input signature takes bare rows; two outputs come back as one object per row.
    rows = _post(url, {"signature_name": "synthesis_stored_noise", "instances": dlatents})
    assert [set(row) for row in rows["predictions"]] == [{"images", "raw_images"}] * 2
    columns = _post(url, {"signature_name": "synthesis_stored_noise", "inputs": dlatents})
    assert set(columns["outputs"]) == {"images", "raw_images"}


def test_versioned_requests(rest_server, grpc_server):
    inputs = {"seeds": [1], "truncation_psi": [1.0]}
    assert RestClient(rest_server.url, NAME, version=1).predict(inputs,
                                                                "generate_from_seeds")["images"].shape[0] == 1
    with GrpcClient(grpc_server.target, NAME, version=1) as client:
        assert client.predict(inputs, "generate_from_seeds")["images"].shape[0] == 1
    with pytest.raises(ServingError) as error:
        RestClient(rest_server.url, NAME, version=7).predict(inputs, "generate_from_seeds")
    assert error.value.code == 404 and "Specific(stylegan, 7)" in error.value.message
    with GrpcClient(grpc_server.target, NAME, version=7) as client, pytest.raises(ServingError) as error:
        client.status()
    assert error.value.code == grpc.StatusCode.NOT_FOUND


# --- status and metadata --------------------------------------------------------------------

def test_status(rest, grpc_client):
    expected = {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert rest.status() == expected
    assert grpc_client.status() == expected


def test_metadata_lists_the_signatures(rest, grpc_client, module):
    metadata = rest.metadata()
    assert metadata == grpc_client.metadata()
    assert metadata["model_spec"] == {"name": NAME, "version": "1", "signature_name": ""}
    signature_def = metadata["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature_def["method_name"] == "tensorflow/serving/predict"
    assert signature_def["inputs"]["z"]["dtype"] == "DT_FLOAT"
    signatures = rest.signatures()
    assert set(signatures) == {"serving_default", "generate_from_seeds", "mapping", "truncate", "synthesis",
                               "synthesis_stored_noise", "synthesis_with_noise", "style_mix", "generate_png"}
    assert signatures["generate_png"].outputs == {"png_bytes": TensorInfo(np.object_, (None,))}
    assert signatures["serving_default"].inputs == {"z": TensorInfo(np.float32, (None, LATENT)),
                                                    "truncation_psi": TensorInfo(np.float32, (None,))}
    assert signatures["generate_from_seeds"].inputs["seeds"] == TensorInfo(np.int64, (None,))
    assert signatures["style_mix"].inputs["crossover"] == TensorInfo(np.int32, (None,))
    assert signatures["synthesis"].outputs == {"images": TensorInfo(np.uint8, (None, 16, 16, 3)),
                                               "raw_images": TensorInfo(np.float32, (None, 16, 16, 3))}
    assert signatures["mapping"].outputs["dlatents"].shape == (None, module.num_layers, LATENT)


# --- bad requests ---------------------------------------------------------------------------

def _post(url, body):
    """POSTs ``body`` (bytes as they are, anything else as JSON) -> the JSON answer; an HTTP error
    comes back as (status, answer)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


GOOD = {"z": _z(1, 5), "truncation_psi": np.ones(1, np.float32)}
BAD_REQUESTS = {  # name: (inputs, signature_name, expected words of the message)
    "wrong z width": ({"z": np.zeros((1, LATENT - 1), np.float32), "truncation_psi": [1.0]},
                      "serving_default", "shape"),
    "strings for floats": ({"z": [["x"] * LATENT], "truncation_psi": [1.0]}, "serving_default", "'z'"),
    "missing input": ({"z": GOOD["z"]}, "serving_default", "Missing but required: ['truncation_psi']"),
    "extra input": (dict(GOOD, seeds=[1]), "serving_default", "Sent extra: ['seeds']"),
    "floats for seeds": ({"seeds": [1.5], "truncation_psi": [1.0]}, "generate_from_seeds", "'seeds'"),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_inputs_are_refused_and_serving_goes_on(case, rest, grpc_client, module):
    inputs, signature_name, words = BAD_REQUESTS[case]
    for format in ("inputs", "instances"):
        with pytest.raises(ServingError) as error:
            rest.predict(inputs, signature_name, format=format)
        assert error.value.code == 400 and words in error.value.message, (format, error.value.message)
    with pytest.raises(ServingError) as error:
        grpc_client.predict(inputs, signature_name)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT and words in error.value.message
    expected = _reference(module, "serving_default", GOOD)
    _assert_same(expected, rest.predict(GOOD))
    _assert_same(expected, grpc_client.predict(GOOD))


def test_batch_sizes_that_differ_fail_in_the_function_not_the_server(rest, grpc_client):
    inputs = {"z": _z(2, 6), "truncation_psi": [1.0, 1.0, 1.0]}  # the row format cannot even say this
    with pytest.raises(ServingError) as error:
        rest.predict(inputs)
    assert error.value.code == 400 and "Incompatible shapes" in error.value.message
    with pytest.raises(ServingError) as error:
        grpc_client.predict(inputs)
    assert error.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert rest.predict(GOOD)["images"].shape == (1, 16, 16, 3)


def test_unknown_signature(rest, grpc_client):
    with pytest.raises(ServingError) as error:
        rest.predict(GOOD, "no_such_signature")
    assert error.value.code == 400 and '"no_such_signature" not found' in error.value.message
    with pytest.raises(ServingError) as error:
        grpc_client.predict(GOOD, "no_such_signature")
    # TF Serving's gRPC Predict answers FAILED_PRECONDITION here (its REST API: 400).
    assert error.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert '"no_such_signature" not found' in error.value.message


def test_unknown_model(rest_server, grpc_server):
    with pytest.raises(ServingError) as error:
        RestClient(rest_server.url, "no_such_model").predict(GOOD)
    assert error.value.code == 404 and "Latest(no_such_model)" in error.value.message
    with pytest.raises(ServingError) as error:
        RestClient(rest_server.url, "no_such_model").status()
    assert error.value.code == 404
    with GrpcClient(grpc_server.target, "no_such_model") as client, pytest.raises(ServingError) as error:
        client.predict(GOOD)
    assert error.value.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("body, words", [
    (b"{not json", "JSON Parse error"),
    (b"\xff\xfe", "JSON Parse error"),
    ([1, 2], "must be an object"),
    ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
    ({"inputs": {}, "instances": []}, "Not allowed to mix"),
    ({"instances": []}, "non-empty list"),
    ({"instances": [[0.0] * LATENT]}, "objects naming"),  # two inputs need named rows
    ({"inputs": {"z": [[0.0] * LATENT, [0.0]], "truncation_psi": [1, 1]}}, "inhomogeneous"),
])
def test_malformed_rest_bodies(body, words, rest_server, rest):
    status, answer = _post(f"{rest_server.url}/v1/models/{NAME}:predict", body)
    assert status == 400 and words in answer["error"], answer
    assert rest.predict(GOOD)["images"].shape == (1, 16, 16, 3)


def test_malformed_rest_paths(rest_server):
    status, answer = _post(f"{rest_server.url}/v1/models/{NAME}:explain", {"inputs": {}})
    assert status == 400 and "Malformed request" in answer["error"]
    with pytest.raises(ServingError) as error:
        RestClient(rest_server.url + "/v2", NAME).status()
    assert error.value.code == 400


def test_unreachable_server():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ServingError) as error:
        RestClient(f"http://127.0.0.1:{port}", NAME, timeout=5).status()
    assert error.value.code is None
    with GrpcClient(f"127.0.0.1:{port}", NAME, timeout=5) as client, pytest.raises(ServingError) as error:
        client.status()
    assert error.value.code == grpc.StatusCode.UNAVAILABLE


def test_client_arguments(rest):
    with pytest.raises(ValueError, match="format"):
        rest.predict(GOOD, format="columns")
    with pytest.raises(ValueError, match="one size"):
        rest.predict({"z": _z(2, 0), "truncation_psi": [1.0]}, format="instances")
