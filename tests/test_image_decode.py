import pytest
from PIL import Image

from cascade.image import ImageLimits, ImageRejected, decode_base64_image
from tests.payloads import b64, gif_bytes, jpeg_bytes, png_bomb, truncated_jpeg

LIMITS = ImageLimits(max_payload_bytes=1_000_000, max_pixels=4096 * 4096)


def test_decodes_a_jpeg_to_rgb():
    image = decode_base64_image(b64(jpeg_bytes(seed=1)), LIMITS)
    assert image.mode == "RGB" and image.size == (224, 224)


def test_decodes_png_with_alpha_to_rgb():
    import io

    buffer = io.BytesIO()
    Image.new("RGBA", (40, 30), (10, 20, 30, 128)).save(buffer, format="PNG")
    image = decode_base64_image(b64(buffer.getvalue()), LIMITS)
    assert image.mode == "RGB" and image.size == (40, 30)


@pytest.mark.parametrize(
    "payload, reason",
    [
        ("", "empty"),
        ("not base64 at all !!!", "bad_base64"),
        (b64(b"GIF89a but not really an image"), "not_an_image"),
        (b64(gif_bytes()), "not_an_image"),  # a real GIF, but not an allowed format
        (b64(truncated_jpeg()), "corrupt_image"),
        (b64(png_bomb()), "too_many_pixels"),
    ],
)
def test_rejects_hostile_payloads_with_a_reason(payload, reason):
    with pytest.raises(ImageRejected) as caught:
        decode_base64_image(payload, LIMITS)
    assert caught.value.reason == reason


def test_rejects_oversized_payload_before_decoding():
    with pytest.raises(ImageRejected) as caught:
        decode_base64_image("A" * (LIMITS.max_payload_bytes + 1), LIMITS)
    assert caught.value.reason == "too_large"


def test_pixel_limit_is_ours_not_pils():
    # 2000x2000 is far below PIL's own bomb threshold but above a 1 Mpx limit.
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (2000, 2000)).save(buffer, format="PNG")
    with pytest.raises(ImageRejected) as caught:
        decode_base64_image(b64(buffer.getvalue()), ImageLimits(max_pixels=1_000_000))
    assert caught.value.reason == "too_many_pixels"


def test_large_jpegs_are_draft_decoded_to_the_scale_the_model_needs():
    # v0.4 validators send frames at their stored size: 1920x1080 decodes at 1/4, 1024x1024 at 1/4
    for size, expected in (((1920, 1080), (480, 270)), ((1024, 1024), (256, 256)), ((640, 480), (320, 240))):
        image = decode_base64_image(b64(jpeg_bytes(seed=2, size=size)), LIMITS)
        assert image.size == expected and image.mode == "RGB"
    wider = decode_base64_image(b64(jpeg_bytes(seed=2, size=(1920, 1080))), ImageLimits(decode_px=448))
    assert wider.size == (960, 540)  # a tier that takes 448 px gets at least that


@pytest.mark.parametrize("width, height", [(16_000_000, 1), (1, 9000), (4000, 400)])
def test_shapes_no_camera_makes_are_refused_from_the_header(width, height):
    with pytest.raises(ImageRejected) as caught:
        decode_base64_image(b64(png_bomb(width, height)), LIMITS)  # only the header is valid: never decoded
    assert caught.value.reason == "bad_shape" and f"{width}x{height}" in str(caught.value)


def test_wide_but_real_frames_pass_the_shape_check():
    for size in ((3840, 1080), (1080, 1920)):  # 32:9 ultra-wide dashcam, a portrait phone photo
        assert decode_base64_image(b64(jpeg_bytes(seed=4, size=size)), LIMITS).size == (size[0] // 4, size[1] // 4)


def test_whole_frame_fits_keep_or_drop_what_they_say():
    from cascade.image import fit_square

    frame = Image.new("RGB", (400, 200), (255, 255, 255))
    frame.paste((255, 0, 0), (0, 0, 40, 200))  # a red strip at the far left
    squash, box, crop = (fit_square(frame, 100, fit) for fit in ("squash", "letterbox", "crop"))
    assert squash.getpixel((2, 50)) == (255, 0, 0) and squash.getpixel((50, 2)) == (255, 255, 255)
    assert box.getpixel((50, 10)) == (0, 0, 0) and box.getpixel((2, 50))[0] > 200 and box.getpixel((50, 50)) == (255, 255, 255)
    assert crop.getpixel((2, 50)) == (255, 255, 255)  # the centre square leaves the strip out
    with pytest.raises(ValueError, match="choose one of"):
        fit_square(frame, 100, "stretch")


def test_a_heavy_png_decodes_reduced_to_the_models_scale():
    """Issue 17, item 5: a 16.8 MP PNG (50 KB of flat colour) decoded whole, 48 MB a request; it
    comes out box-reduced like a drafted JPEG (both sides >= decode_px), and such decodes go one at a time."""
    import io

    from PIL import Image

    from cascade.image import DEFAULT_DECODE_PX, ImageLimits, decode_image_bytes

    buffer = io.BytesIO()
    Image.new("RGB", (4096, 3072), (120, 124, 118)).save(buffer, format="PNG")
    image = decode_image_bytes(buffer.getvalue(), ImageLimits())
    assert image.mode == "RGB" and min(image.size) >= DEFAULT_DECODE_PX and image.size[0] * image.size[1] < 4096 * 3072 / 100
    assert image.size[0] / image.size[1] == 4096 / 3072
    small = io.BytesIO()
    Image.new("RGB", (640, 480), (1, 2, 3)).save(small, format="PNG")
    assert decode_image_bytes(small.getvalue(), ImageLimits()).size == (640, 480)  # under the heavy bound: untouched
