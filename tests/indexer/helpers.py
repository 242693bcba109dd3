"""Helpers for the domain-package tests: a worker running in the test's event loop, polling, a sample repo."""

from __future__ import annotations

from pathlib import Path

from tests.support import running, wait_until  # noqa: F401 (re-exported for the tests here)

PYTHON = '''"""Billing helpers."""

import decimal


class InvoiceCalculator:
    """Computes invoice totals."""

    def total_with_tax(self, amount, rate):
        return amount * (1 + rate)


def format_currency(value):
    return f"{value:.2f}"
'''
TYPESCRIPT = """// Renders dashboard widgets.
export interface WidgetProps {
  title: string;
}

export class DashboardRenderer {
  renderWidget(props: WidgetProps): string {
    return props.title;
  }
}

export const parseLayout = (text: string) => text.split(",");
"""
JAVASCRIPT = """class EventBus {
  subscribeTopic(name, fn) {
    this.handlers[name] = fn;
  }
}

function dispatchMessage(bus, msg) {
  return bus.handlers[msg.topic](msg);
}
"""
GO = """package store

// KeyValueStore keeps values in memory.
type KeyValueStore struct {
	items map[string]string
}

func (s *KeyValueStore) LookupKey(key string) string {
	return s.items[key]
}

func NewKeyValueStore() *KeyValueStore {
	return &KeyValueStore{}
}
"""
RUST = """/// A ring buffer of samples.
pub struct RingBuffer {
    data: Vec<f64>,
}

impl RingBuffer {
    pub fn push_sample(&mut self, value: f64) {
        self.data.push(value);
    }
}

pub fn average_samples(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}
"""
JAVA = """package shop;

/** Places orders. */
public class OrderService {
    public OrderService() {}

    public void placeOrder(String sku) {
        System.out.println(sku);
    }
}
"""


def write_sample_repo(root: Path) -> Path:
    """A small repository in six languages, with ignored, binary and generated files that must be skipped."""
    files = {
        "billing/invoice.py": PYTHON,
        "web/dashboard.ts": TYPESCRIPT,
        "web/events.js": JAVASCRIPT,
        "store/kv.go": GO,
        "dsp/ring.rs": RUST,
        "shop/OrderService.java": JAVA,
        "README.md": "# Sample\nA repository for indexer tests.\n",
        ".gitignore": "*.log\nbuild/\n",
        "debug.log": "ignoredLogEntry\n",
        "build/generated.py": "def generatedButIgnored():\n    pass\n",
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0binaryImageData")
    (root / "blob.txt").write_bytes(b"binaryBlobMarker\0\0\0")
    return root


TEMPLATES = {
    "py": "def compute_{n}(value):\n    return value + {n}\n",
    "ts": "export function renderPanel{n}(x: number): number {{\n  return x + {n};\n}}\n",
    "js": "function handleClick{n}(event) {{\n  return event.target;\n}}\n",
    "go": "package gen\n\nfunc LoadRecord{n}() int {{\n\treturn {n}\n}}\n",
    "rs": "pub fn decode_frame_{n}() -> u32 {{\n    {n}\n}}\n",
    "java": "class Widget{n} {{\n    int size{n}() {{ return {n}; }}\n}}\n",
}


def write_many(root: Path, count: int) -> list[Path]:
    """`count` small source files spread over the six languages, each defining one uniquely named symbol."""
    paths = []
    extensions = list(TEMPLATES)
    for n in range(count):
        extension = extensions[n % len(extensions)]
        path = root / "generated" / f"d{n % 7}" / f"file_{n}.{extension}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATES[extension].format(n=n))
        paths.append(path)
    return paths
