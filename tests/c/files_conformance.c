/* File-syscall conformance: each CHECK is a call with the result Linux gives. Runs natively
 * and under Kiln; prints every failure and a final count, exits 1 if anything failed. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static int checks, failures;

#define CHECK(expr) do { checks++; if (!(expr)) { failures++; printf("FAIL %s:%d: %s (errno %d %s)\n", __FILE__, __LINE__, #expr, errno, strerror(errno)); } } while (0)
/* A call that must fail with `err`. */
#define FAILS(call, err) do { errno = 0; long r_ = (long)(call); checks++; if (r_ != -1 || errno != (err)) { failures++; printf("FAIL %s:%d: %s = %ld errno %d (%s), want -1 errno %d (%s)\n", __FILE__, __LINE__, #call, r_, errno, strerror(errno), err, strerror(err)); } } while (0)

static void slurp(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
    buf[n > 0 ? n : 0] = 0;
    if (fd >= 0) close(fd);
}

int main(void) {
    char dir[] = "/tmp/kiln-files-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK(chdir(dir) == 0);
    char buf[8192], buf2[256];

    /* open/creat, read/write, lseek, pread/pwrite */
    int fd = open("a", O_CREAT | O_RDWR | O_EXCL, 0640);
    CHECK(fd >= 3);
    FAILS(open("a", O_CREAT | O_RDWR | O_EXCL, 0640), EEXIST);
    FAILS(open("missing", O_RDONLY), ENOENT);
    FAILS(open("a/x", O_RDONLY), ENOTDIR);
    FAILS(open("a", O_RDONLY | O_DIRECTORY), ENOTDIR);
    FAILS(open(".", O_RDWR), EISDIR);
    CHECK(write(fd, "hello world", 11) == 11);
    CHECK(lseek(fd, 0, SEEK_CUR) == 11);
    CHECK(lseek(fd, -5, SEEK_END) == 6);
    CHECK(read(fd, buf, 100) == 5 && memcmp(buf, "world", 5) == 0);
    CHECK(read(fd, buf, 100) == 0);
    FAILS(lseek(fd, -100, SEEK_SET), EINVAL);
    CHECK(pwrite(fd, "J", 1, 0) == 1);
    CHECK(pread(fd, buf, 5, 0) == 5 && memcmp(buf, "Jello", 5) == 0);
    CHECK(lseek(fd, 0, SEEK_CUR) == 11);
    FAILS(pread(fd, buf, 1, -1), EINVAL);
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size == 11 && S_ISREG(st.st_mode));
    CHECK((st.st_mode & 0777) == (0640 & ~022));
    FAILS(write(-1, "x", 1), EBADF);
    FAILS(write(fd, (void *)8, 4), EFAULT);
    FAILS(pread(fd, (void *)8, 4, 0), EFAULT);

    /* readv/writev/preadv/pwritev */
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    CHECK(lseek(fd, 0, SEEK_SET) == 0);
    CHECK(writev(fd, iov, 2) == 4);
    char x1[3] = {0}, x2[3] = {0};
    struct iovec riov[2] = {{x1, 2}, {x2, 2}};
    CHECK(preadv(fd, riov, 2, 0) == 4 && strcmp(x1, "ab") == 0 && strcmp(x2, "cd") == 0);
    CHECK(pwritev(fd, iov, 1, 20) == 2);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 22);
    FAILS(writev(fd, iov, -1), EINVAL);

    /* O_APPEND, O_TRUNC, ftruncate, truncate */
    int ap = open("a", O_WRONLY | O_APPEND);
    CHECK(ap >= 0 && write(ap, "Z", 1) == 1);
    CHECK(fstat(fd, &st) == 0 && st.st_size == 23);
    CHECK(ftruncate(fd, 4) == 0 && fstat(fd, &st) == 0 && st.st_size == 4);
    CHECK(truncate("a", 100) == 0 && stat("a", &st) == 0 && st.st_size == 100);
    FAILS(ftruncate(fd, -1), EINVAL);
    int tr = open("a", O_WRONLY | O_TRUNC);
    CHECK(tr >= 0 && fstat(fd, &st) == 0 && st.st_size == 0);
    close(tr);
    close(ap);
    CHECK(lseek(fd, 0, SEEK_SET) == 0 && write(fd, "data\n", 5) == 5);
    /* SEEK_DATA / SEEK_HOLE */
    CHECK(lseek(fd, 1, SEEK_DATA) == 1);
    CHECK(lseek(fd, 1, SEEK_HOLE) == 5);
    FAILS(lseek(fd, 5, SEEK_DATA), ENXIO);

    /* dup family and fcntl */
    int d = dup(fd);
    CHECK(d > fd);
    CHECK(lseek(d, 0, SEEK_SET) == 0 && lseek(fd, 0, SEEK_CUR) == 0);
    CHECK(dup2(fd, 50) == 50 && fcntl(50, F_GETFD) == 0);
    CHECK(dup3(fd, 51, O_CLOEXEC) == 51 && fcntl(51, F_GETFD) == FD_CLOEXEC);
    FAILS(dup3(fd, fd, 0), EINVAL);
    FAILS(dup2(-1, 52), EBADF);
    CHECK(fcntl(fd, F_DUPFD, 60) == 60);
    CHECK(fcntl(fd, F_DUPFD_CLOEXEC, 60) == 61 && fcntl(61, F_GETFD) == FD_CLOEXEC);
    CHECK(fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 && fcntl(fd, F_GETFD) == FD_CLOEXEC && fcntl(d, F_GETFD) == 0);
    CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR);
    CHECK(fcntl(fd, F_SETFL, O_NONBLOCK) == 0 && (fcntl(d, F_GETFL) & O_NONBLOCK));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
    CHECK(fcntl(fd, F_SETLK, &fl) == 0);
    fl.l_type = F_WRLCK;
    CHECK(fcntl(fd, F_GETLK, &fl) == 0 && fl.l_type == F_UNLCK);
    CHECK(flock(fd, LOCK_EX | LOCK_NB) == 0 && flock(fd, LOCK_UN) == 0);
    FAILS(fcntl(-1, F_GETFD), EBADF);
    CHECK(close(50) == 0 && close(51) == 0 && close(60) == 0 && close(61) == 0);
    FAILS(close(50), EBADF);
    CHECK(syscall(SYS_close_range, 40, 45, 0) == 0);

    /* RLIMIT_NOFILE */
    struct rlimit old, lim = {.rlim_cur = 8};
    CHECK(getrlimit(RLIMIT_NOFILE, &old) == 0);
    lim.rlim_max = old.rlim_max;
    CHECK(setrlimit(RLIMIT_NOFILE, &lim) == 0);
    int opened = 0, last;
    while ((last = open("a", O_RDONLY)) >= 0) opened++;
    CHECK(errno == EMFILE && opened > 0);
    for (int i = 5; i < 8; i++) if (i != fd && i != d) close(i);
    CHECK(setrlimit(RLIMIT_NOFILE, &old) == 0);

    /* directories, getdents, rename, link, symlink, unlink */
    CHECK(mkdir("sub", 0755) == 0);
    FAILS(mkdir("sub", 0755), EEXIST);
    FAILS(mkdir("nope/sub", 0755), ENOENT);
    CHECK(close(open("sub/f1", O_CREAT | O_WRONLY, 0644)) == 0);
    CHECK(close(open("sub/f2", O_CREAT | O_WRONLY, 0644)) == 0);
    FAILS(rmdir("sub"), ENOTEMPTY);
    FAILS(unlink("sub"), EISDIR);
    FAILS(rmdir("a"), ENOTDIR);
    DIR *dp = opendir("sub");
    int entries = 0;
    struct dirent *de;
    while ((de = readdir(dp))) entries++;
    closedir(dp);
    CHECK(entries == 4);
    CHECK(rename("sub/f1", "sub/f3") == 0);
    FAILS(stat("sub/f1", &st), ENOENT);
    CHECK(syscall(SYS_renameat2, AT_FDCWD, "sub/f2", AT_FDCWD, "sub/f3", 1 /* NOREPLACE */) == -1 && errno == EEXIST);
    CHECK(syscall(SYS_renameat2, AT_FDCWD, "sub/f2", AT_FDCWD, "sub/f3", 2 /* EXCHANGE */) == 0);
    FAILS(rename("sub", "sub/inner"), EINVAL);
    CHECK(link("a", "hard") == 0 && stat("a", &st) == 0 && st.st_nlink == 2);
    FAILS(link("a", "hard"), EEXIST);
    FAILS(link("sub", "subhard"), EPERM);
    CHECK(symlink("a", "sym") == 0);
    CHECK(readlink("sym", buf2, sizeof buf2) == 1 && buf2[0] == 'a');
    FAILS(readlink("a", buf2, sizeof buf2), EINVAL);
    CHECK(lstat("sym", &st) == 0 && S_ISLNK(st.st_mode));
    CHECK(stat("sym", &st) == 0 && S_ISREG(st.st_mode));
    FAILS(open("sym", O_RDONLY | O_NOFOLLOW), ELOOP);
    CHECK(symlink("loop2", "loop1") == 0 && symlink("loop1", "loop2") == 0);
    FAILS(open("loop1", O_RDONLY), ELOOP);
    CHECK(unlink("hard") == 0 && stat("a", &st) == 0 && st.st_nlink == 1);
    FAILS(unlink("hard"), ENOENT);
    CHECK(unlinkat(AT_FDCWD, "sub/f2", 0) == 0 && unlinkat(AT_FDCWD, "sub/f3", 0) == 0);
    FAILS(unlinkat(AT_FDCWD, "sub", 0), EISDIR);
    CHECK(unlinkat(AT_FDCWD, "sub", AT_REMOVEDIR) == 0);
    char longname[300];
    memset(longname, 'n', 299);
    longname[299] = 0;
    FAILS(open(longname, O_CREAT | O_RDWR, 0644), ENAMETOOLONG);

    /* *at with a dirfd, AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW */
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    CHECK(fstatat(dfd, "sym", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode));
    CHECK(fstatat(fd, "", &st, AT_EMPTY_PATH) == 0 && S_ISREG(st.st_mode));
    FAILS(fstatat(fd, "", &st, 0), ENOENT);
    FAILS(openat(fd, "x", O_RDONLY), ENOTDIR);
    int af = openat(dfd, "a", O_RDONLY);
    CHECK(af >= 0);
    close(af);
    CHECK(mkdirat(dfd, "d2", 0700) == 0 && faccessat(dfd, "d2", X_OK, 0) == 0);
    CHECK(fchmodat(dfd, "a", 0600, 0) == 0 && stat("a", &st) == 0 && (st.st_mode & 07777) == 0600);
    CHECK(fchownat(dfd, "a", 1000, 1000, 0) == 0 && stat("a", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1000);
    CHECK(access("a", R_OK | W_OK) == 0);
    FAILS(access("a", X_OK), EACCES);
    FAILS(access("missing", F_OK), ENOENT);
    struct timespec ts[2] = {{100, 0}, {200, 0}};
    CHECK(utimensat(dfd, "a", ts, 0) == 0 && stat("a", &st) == 0 && st.st_atime == 100 && st.st_mtime == 200);
    /* statx through the raw syscall (musl 1.2.3 has no wrapper): mode at 28, mtime at 112. */
    unsigned char sx[256];
    CHECK(syscall(SYS_statx, dfd, "a", 0, 0x7ff, sx) == 0);
    int64_t mt;
    uint16_t mode;
    memcpy(&mt, sx + 112, 8);
    memcpy(&mode, sx + 28, 2);
    CHECK(mt == 200 && (mode & 0777) == 0600);

    /* cwd */
    CHECK(chdir("d2") == 0 && getcwd(buf, sizeof buf) && strstr(buf, "/d2") != NULL);
    CHECK(getcwd(buf, 2) == NULL && errno == ERANGE);
    CHECK(fchdir(dfd) == 0);
    FAILS(chdir("a"), ENOTDIR);
    CHECK(umask(077) == 022 && umask(022) == 077);

    /* pipes */
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0);
    FAILS(read(p[0], buf, 10), EAGAIN);
    CHECK(write(p[1], "pipe", 4) == 4);
    int avail = 0;
    CHECK(ioctl(p[0], FIONREAD, &avail) == 0 && avail == 4);
    CHECK(read(p[0], buf, 10) == 4 && memcmp(buf, "pipe", 4) == 0);
    CHECK(fcntl(p[0], F_GETPIPE_SZ) >= 4096);
    FAILS(lseek(p[0], 0, SEEK_SET), ESPIPE);
    FAILS(write(p[0], "x", 1), EBADF);
    close(p[1]);
    CHECK(read(p[0], buf, 10) == 0);
    close(p[0]);
    CHECK(pipe(p) == 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    FAILS(write(p[1], "x", 1), EPIPE);
    close(p[1]);

    /* eventfd, timerfd */
    int efd = eventfd(3, EFD_NONBLOCK);
    uint64_t v = 0;
    CHECK(efd >= 0 && read(efd, &v, 8) == 8 && v == 3);
    FAILS(read(efd, &v, 8), EAGAIN);
    FAILS(read(efd, &v, 4), EINVAL);
    v = 2;
    CHECK(write(efd, &v, 8) == 8 && read(efd, &v, 8) == 8 && v == 2);
    close(efd);
    int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    struct itimerspec its = {.it_value = {0, 20 * 1000 * 1000}};
    CHECK(tfd >= 0 && timerfd_settime(tfd, 0, &its, NULL) == 0);
    CHECK(read(tfd, &v, 8) == 8 && v == 1); /* blocks ~20 ms */
    CHECK(timerfd_gettime(tfd, &its) == 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0);
    close(tfd);

    /* sendfile, copy_file_range, memfd, mmap of files */
    int out = open("copy", O_CREAT | O_RDWR | O_TRUNC, 0644);
    off_t off = 0;
    CHECK(sendfile(out, fd, &off, 100) == 5 && off == 5);
    loff_t in_off = 0;
    CHECK(copy_file_range(fd, &in_off, out, NULL, 5, 0) == 5);
    slurp("copy", buf, sizeof buf);
    CHECK(strcmp(buf, "data\ndata\n") == 0);
    int mfd = memfd_create("kiln", MFD_CLOEXEC);
    CHECK(mfd >= 0 && write(mfd, "memfd!", 6) == 6);
    char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(m != MAP_FAILED && memcmp(m, "memfd!", 6) == 0);
    m[0] = 'M';
    CHECK(msync(m, 4096, MS_SYNC) == 0 && pread(mfd, buf, 6, 0) == 6 && memcmp(buf, "Memfd!", 6) == 0);
    CHECK(munmap(m, 4096) == 0);
    char *pm = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, out, 0);
    CHECK(pm != MAP_FAILED && memcmp(pm, "data\ndata\n", 10) == 0 && pm[10] == 0);
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED && errno == EBADF);
    CHECK(pipe(p) == 0);
    CHECK(mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, p[0], 0) == MAP_FAILED && errno == ENODEV);
    close(p[0]);
    close(p[1]);
    close(out);
    close(mfd);

    /* fsync family, statfs */
    CHECK(fsync(fd) == 0 && fdatasync(fd) == 0);
    sync();
    struct statfs sfs;
    CHECK(statfs("/dev/shm", &sfs) == 0 && sfs.f_type == 0x01021994);
    CHECK(fstatfs(fd, &sfs) == 0);
    CHECK(statfs("/proc", &sfs) == 0 && sfs.f_type == 0x9fa0);

    /* devices and /proc */
    int z = open("/dev/zero", O_RDONLY);
    memset(buf, 1, 16);
    CHECK(z >= 0 && read(z, buf, 16) == 16 && buf[0] == 0 && buf[15] == 0);
    close(z);
    int full = open("/dev/full", O_WRONLY);
    FAILS(write(full, "x", 1), ENOSPC);
    close(full);
    int nul = open("/dev/null", O_RDWR);
    CHECK(write(nul, "x", 1) == 1 && read(nul, buf, 1) == 0);
    close(nul);
    slurp("/proc/self/status", buf, sizeof buf);
    CHECK(strstr(buf, "VmRSS:") != NULL);
    slurp("/proc/meminfo", buf, sizeof buf);
    CHECK(strstr(buf, "MemTotal:") != NULL);
    slurp("/proc/self/maps", buf, sizeof buf);
    CHECK(strstr(buf, "[stack]") != NULL);
    snprintf(buf2, sizeof buf2, "/proc/self/fd/%d", fd);
    ssize_t ln = readlink(buf2, buf, sizeof buf - 1);
    CHECK(ln > 0);
    buf[ln > 0 ? ln : 0] = 0;
    CHECK(strstr(buf, "/a") != NULL);
    CHECK(readlink("/proc/self/exe", buf, sizeof buf) > 0);

    /* cleanup */
    close(fd);
    close(d);
    close(dfd);
    unlink("a");
    unlink("sym");
    unlink("loop1");
    unlink("loop2");
    unlink("copy");
    rmdir("d2");
    CHECK(chdir("/") == 0 && rmdir(dir) == 0);

    printf("files: %d checks, %d failed\n", checks, failures);
    return failures != 0;
}
