"""Decodes a `maec recon` picture (PNG, 8-bit gray or RGB, without PIL: zlib and the five PNG
row filters) and checks its layout and its panels:

    check_recon_png.py PICTURE ROWS IMG_SIZE PATCH SCALE CHANNELS MASKED

The picture is ROWS rows of 4 cells of IMG_SIZE * SCALE pixels with a 4-pixel margin. In every
row exactly MASKED patches of the masked input (cell 1) are uniform grey and differ from the
original (cell 0); the visible patches of cells 1 and 3 (pasted back) equal the original's."""
import struct
import sys
import zlib

MARGIN, GREY = 4, 128


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def read_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind}"
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (0, 2) and interlace == 0, f"unexpected PNG header {header}"
    channels = 3 if colour == 2 else 1
    raw, stride, rows, prev = zlib.decompress(idat), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            line[i] = (line[i] + [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]) & 255
        rows.append(line)
        prev = line
    return width, height, channels, rows


def main():
    path = sys.argv[1]
    n_rows, size, patch, scale, want_channels, masked = map(int, sys.argv[2:8])
    width, height, channels, pixels = read_png(path)
    cell = size * scale
    want = (4 * cell + 5 * MARGIN, n_rows * (cell + MARGIN) + MARGIN)
    assert (width, height) == want, f"picture is {width}x{height}, expected {want[0]}x{want[1]}"
    assert channels == want_channels, f"{channels} channels, expected {want_channels}"
    block = patch * scale

    def patch_of(row, col, py, px):
        top, left = MARGIN + row * (cell + MARGIN) + py * block, MARGIN + col * (cell + MARGIN) + px * block
        return [bytes(pixels[top + y][left * channels:(left + block) * channels]) for y in range(block)]

    grid = size // patch
    for row in range(n_rows):
        grey = 0
        for py in range(grid):
            for px in range(grid):
                original, shown, pasted = (patch_of(row, col, py, px) for col in (0, 1, 3))
                if all(b == GREY for line in shown for b in line) and shown != original:
                    grey += 1
                else:
                    assert shown == original, f"row {row}: visible patch ({py}, {px}) differs from the original"
                    assert pasted == original, f"row {row}: patch ({py}, {px}) was not pasted back"
        assert grey == masked, f"row {row}: {grey} grey patches in the masked input, expected {masked}"
    print(f"{path}: {width}x{height}, {channels} channels, {masked} of {grid * grid} patches masked per row")


if __name__ == "__main__":
    main()
