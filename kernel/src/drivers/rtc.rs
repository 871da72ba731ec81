//! The CMOS real-time clock: read once at boot for the wall clock.

use crate::arch::x86_64::port::{inb, outb};

fn read(reg: u8) -> u8 {
    outb(0x70, reg);
    inb(0x71)
}

fn updating() -> bool {
    read(0x0A) & 0x80 != 0
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Seconds since the Unix epoch, or None when there is no RTC (reads all ones).
pub fn read_unix_seconds() -> Option<u64> {
    let mut spins = 0;
    while updating() && spins < 1_000_000 {
        spins += 1;
    }
    let mut regs = [0u8; 7];
    let mut again = [1u8; 7];
    // Read until two reads agree, so an update in between cannot tear the value.
    for _ in 0..5 {
        for (i, r) in [0x00, 0x02, 0x04, 0x07, 0x08, 0x09, 0x32].iter().enumerate() {
            regs[i] = read(*r);
        }
        if regs == again {
            break;
        }
        again = regs;
    }
    if regs.iter().take(6).all(|&b| b == 0xFF) {
        return None;
    }
    let status_b = read(0x0B);
    let bcd = status_b & 0x04 == 0;
    let conv = |v: u8| if bcd { (v & 0x0F) + (v >> 4) * 10 } else { v };
    let sec = conv(regs[0]);
    let min = conv(regs[1]);
    let mut hour = conv(regs[2] & 0x7F);
    if status_b & 0x02 == 0 && regs[2] & 0x80 != 0 {
        hour = (hour % 12) + 12; // 12-hour mode, PM
    }
    let day = conv(regs[3]);
    let month = conv(regs[4]);
    let year = conv(regs[5]);
    let century = match conv(regs[6]) {
        c @ 19..=21 => c,
        _ => 20,
    };
    let full_year = i64::from(century) * 100 + i64::from(year);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(full_year, u32::from(month), u32::from(day));
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec);
    u64::try_from(secs).ok()
}
