/* printf of floating-point values and some libm calls (SSE state, libm, printf's %f/%e/%g). */
#include <math.h>
#include <stdio.h>

/* volatile: keep the compiler from folding the math at build time. */
static volatile double pi = 3.14159265358979323846;
static volatile double big = 12345.6789;
static volatile double small = 0.0001;
static volatile double two = 2.0;
static volatile double one = 1.0;

int main(void)
{
    printf("%.6f %.3e %g\n", pi, big, small);
    printf("sqrt(2)=%.12f\n", sqrt(two));
    printf("sin(1)=%.12f\n", sin(one));
    printf("exp(1)=%.12f\n", exp(one));
    printf("log(10)=%.12f\n", log(10.0 * one));
    printf("pow(2,0.5)=%.12f\n", pow(two, 0.5));
    float f = (float)pi * 2.0f;
    printf("float=%.5f\n", f);
    return 0;
}
