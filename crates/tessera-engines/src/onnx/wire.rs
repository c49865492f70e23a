//! Reading and writing protobuf's wire format, for the edits of ONNX graphs that copy every field
//! they do not change byte for byte ([`inline_constant_inputs`](super::inline_constant_inputs),
//! [`split_graph`](super::split_graph)).

pub(super) const VARINT: u8 = 0;
pub(super) const LEN: u8 = 2;

pub(super) fn write_len_field(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    write_varint(out, u64::from(number << 3 | u32::from(LEN)));
    write_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

pub(super) fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// One field of a message: its number, wire type, its bytes with the tag, and (for
/// length-delimited fields) the bytes inside.
pub(super) struct Field<'a> {
    pub(super) number: u32,
    pub(super) wire: u8,
    pub(super) raw: &'a [u8],
    pub(super) payload: &'a [u8],
}

/// The fields of one message, in order.
pub(super) struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Fields<'a> {
        Fields { bytes, at: 0 }
    }

    pub(super) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or("the model file ends inside a number")?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("the model file holds a number longer than ten bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("the model file ends inside a field")?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn field(&mut self) -> Result<Field<'a>, String> {
        let start = self.at;
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).map_err(|_| "a field number out of range")?;
        let wire = (tag & 7) as u8;
        let mut payload: &[u8] = &[];
        match wire {
            VARINT => {
                self.varint()?;
            }
            1 => {
                self.take(8)?;
            }
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| "a field too long")?;
                payload = self.take(n)?;
            }
            5 => {
                self.take(4)?;
            }
            other => {
                return Err(format!(
                    "not an ONNX model: wire type {other} in field {number}"
                ));
            }
        }
        Ok(Field {
            number,
            wire,
            raw: &self.bytes[start..self.at],
            payload,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            // Stop after the first error: the position is no longer on a field boundary.
            self.at = self.bytes.len();
        }
        Some(field)
    }
}
