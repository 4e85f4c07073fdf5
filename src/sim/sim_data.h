/* sim_data.h - private to src/sim: the fixed vocabulary the simulator draws
 * its synthetic shop from (categories with their product nouns and typical
 * prices, brands, adjectives, colours, countries, browsers, names). Kept out
 * of sim.c so the generator reads as behaviour, not tables. None of the
 * strings need JSON escaping. */
#ifndef BSP_SIM_DATA_H
#define BSP_SIM_DATA_H

typedef struct sim_category {
    const char *path;     /* "Home > Lighting" */
    double median_price;  /* pounds */
    const char *nouns[5]; /* product kinds, NULL-terminated when fewer */
} sim_category;

static const sim_category SIM_CATEGORIES[] = {
    {"Home > Lighting", 35, {"Lamp", "Lantern", "Pendant Light", "String Lights", "Candle Holder"}},
    {"Home > Kitchen", 25, {"Mug", "Teapot", "Chopping Board", "Knife Set", "Saucepan"}},
    {"Home > Decor", 30, {"Vase", "Mirror", "Cushion", "Photo Frame", "Wall Clock"}},
    {"Home > Bedding", 45, {"Duvet Cover", "Pillow", "Throw", "Sheet Set", NULL}},
    {"Garden > Plants", 20, {"Plant Pot", "Planter", "Seed Kit", "Watering Can", NULL}},
    {"Garden > Furniture", 150, {"Bench", "Parasol", "Sun Lounger", "Bistro Table", NULL}},
    {"Fashion > Women > Dresses", 60, {"Dress", "Maxi Dress", "Wrap Dress", "Shirt Dress", NULL}},
    {"Fashion > Women > Shoes", 70, {"Trainers", "Ankle Boots", "Sandals", "Loafers", NULL}},
    {"Fashion > Men > Shirts", 40, {"Shirt", "Polo Shirt", "Oxford Shirt", "Linen Shirt", NULL}},
    {"Fashion > Men > Jackets", 110, {"Jacket", "Parka", "Bomber Jacket", "Rain Coat", NULL}},
    {"Fashion > Accessories", 25, {"Scarf", "Belt", "Wallet", "Sunglasses", "Beanie"}},
    {"Beauty > Skincare", 22, {"Serum", "Moisturiser", "Cleanser", "Face Mask", NULL}},
    {"Beauty > Fragrance", 55, {"Eau de Parfum", "Cologne", "Body Mist", NULL, NULL}},
    {"Electronics > Audio", 90, {"Headphones", "Speaker", "Earbuds", "Turntable", NULL}},
    {"Electronics > Accessories", 20, {"Charger", "Cable", "Power Bank", "Phone Case", NULL}},
    {"Sports > Fitness", 30, {"Yoga Mat", "Dumbbells", "Resistance Band", "Kettlebell", NULL}},
    {"Sports > Outdoor", 50, {"Tent", "Backpack", "Water Bottle", "Head Torch", NULL}},
    {"Toys > Games", 25, {"Board Game", "Puzzle", "Card Game", NULL, NULL}},
    {"Toys > Baby", 20, {"Soft Toy", "Play Mat", "Teether", "Rattle", NULL}},
    {"Books > Fiction", 12, {"Novel", "Thriller", "Short Stories", NULL, NULL}},
    {"Books > Cooking", 20, {"Cookbook", "Baking Book", NULL, NULL, NULL}},
    {"Stationery", 10, {"Notebook", "Pen Set", "Planner", "Sketchbook", NULL}},
    {"Pets > Dogs", 25, {"Dog Bed", "Dog Lead", "Chew Toy", "Dog Bowl", NULL}},
    {"Food > Pantry", 9, {"Coffee", "Tea", "Olive Oil", "Chocolate", "Honey"}},
};
#define SIM_NCAT (sizeof SIM_CATEGORIES / sizeof *SIM_CATEGORIES)

static const char *const SIM_BRANDS[] = {
    "Northwind", "Aster",       "Brightwell", "Calder",  "Duneview", "Elmstead", "Fenwick",
    "Greyhaven", "Hollow Pine", "Ivory Lane", "Juniper", "Kestrel",  "Larkspur", "Meadowcroft",
    "Nimbus",    "Oakridge",    "Pebble",     "Quill",   "Rowan",    "Saltmarsh"};
static const char *const SIM_ADJECTIVES[] = {
    "Classic", "Modern", "Rustic", "Organic", "Vintage", "Deluxe", "Everyday", "Compact",
    "Nordic",  "Soft",   "Bold",   "Eco",     "Premium", "Little", "Grand",    "Coastal"};
static const char *const SIM_COLOURS[] = {"Black", "White",    "Sage",  "Navy",    "Terracotta",
                                          "Oat",   "Charcoal", "Blush", "Mustard", "Teal"};
/* Countries with rough weights (per mille). */
static const struct {
    const char *code;
    int weight;
} SIM_COUNTRIES[] = {{"GB", 520}, {"DE", 90}, {"FR", 80}, {"NL", 50}, {"IE", 50},
                     {"ES", 40},  {"IT", 40}, {"SE", 30}, {"US", 70}, {"AU", 30}};
static const char *const SIM_AGENTS[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"};
static const char *const SIM_FIRST[] = {"Ann",   "Ben",   "Chloe",  "David", "Emma", "Farid",
                                        "Grace", "Harry", "Isla",   "Jack",  "Kofi", "Lena",
                                        "Mia",   "Noah",  "Olivia", "Priya", "Ravi", "Sofia"};
static const char *const SIM_LAST[] = {"Smith",  "Jones",  "Taylor", "Brown", "Williams",
                                       "Wilson", "Khan",   "Patel",  "Evans", "Murphy",
                                       "Garcia", "Muller", "Rossi",  "Novak"};
static const char *const SIM_PLANS[] = {"free", "free", "free", "plus", "premium"};

#define SIM_COUNT(a) (sizeof(a) / sizeof *(a))

#endif
